package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/crawlpolite/crawlpolite/internal/policy"
	"github.com/crawlpolite/crawlpolite/internal/throttle"
	"github.com/crawlpolite/crawlpolite/pkg/semaphore"
)

// Admin endpoints must not let one request cost the shared Redis more than a few calls: /state
// answers at most stateMaxHosts hosts in one pipelined script call (one script on one server, one
// per slot on Cluster), at most stateConcurrency requests at once, and /readyz pings
// Redis at most once per readyEvery whatever the probe rate.
const (
	stateMaxHosts    = 8
	stateConcurrency = 2
	readyEvery       = time.Second
	quitTokenFile    = "quit-token"
)

// admin serves the sidecar's operational endpoints.
type admin struct {
	reg      *prometheus.Registry
	rdb      redis.UniversalClient // nil for the in-process backend
	obs      *semaphore.Observer   // reads /state from rdb; nil with it
	degrade  bool                  // --on-redis-down=local: ready without Redis
	thr      *throttle.Throttle
	token    string // POST /quitquitquit needs "Authorization: Bearer <token>"; empty refuses all
	draining atomic.Bool
	quit     chan struct{}
	quitOnce sync.Once

	stateSlots chan struct{}

	pingMu   sync.Mutex
	pingAt   time.Time
	pingDown bool
}

// newAdmin serves reg, rdb's health and state (sem: the options rdb's semaphore was made with, for
// its key prefix), thr's hosts and the quit token.
func newAdmin(reg *prometheus.Registry, rdb redis.UniversalClient, sem semaphore.Options, degrade bool, thr *throttle.Throttle, token string) *admin {
	a := &admin{reg: reg, rdb: rdb, degrade: degrade, thr: thr, token: token,
		quit: make(chan struct{}), stateSlots: make(chan struct{}, stateConcurrency)}
	if rdb != nil {
		a.obs = semaphore.NewObserver(observeClient(rdb), sem)
	}
	return a
}

func (a *admin) mux() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	m.HandleFunc("GET /readyz", a.readyz)
	m.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{Registry: a.reg}))
	m.HandleFunc("GET /state", a.state)
	m.HandleFunc("GET /debug/hosts", a.debugHosts)
	m.HandleFunc("POST /quitquitquit", a.quitquitquit)
	return m
}

// quitquitquit starts the drain for a caller holding the token from the shared volume: a crawled
// redirect can make the crawler send a POST, but cannot read a file. The source address proves
// nothing (behind Istio, inbound traffic arrives from 127.0.0.6).
func (a *admin) quitquitquit(w http.ResponseWriter, r *http.Request) {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if a.token == "" || !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(a.token)) != 1 {
		http.Error(w, "forbidden: send Authorization: Bearer <the "+quitTokenFile+" file of --ca-dir>", http.StatusForbidden)
		return
	}
	a.quitOnce.Do(func() { close(a.quit) })
	_, _ = w.Write([]byte("draining\n"))
}

// writeQuitToken makes a random token and writes it into dir for the pod's containers; with no dir
// the token exists nowhere and only a signal stops the sidecar.
func writeQuitToken(dir string) (string, error) {
	if dir == "" {
		return "", nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(b)
	path := filepath.Join(dir, quitTokenFile)
	// Readable by the pod's other containers (they share the volume, not always the uid).
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(tok+"\n"), 0o644); err != nil { //nolint:gosec // the pod is the boundary, see above
		return "", fmt.Errorf("quit token: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("quit token: %w", err)
	}
	return tok, nil
}

// readyz is ready once the policy is loaded (it is before serving starts) and Redis answers; with
// --on-redis-down=local a Redis outage degrades rather than unreadies. Draining is never ready.
// The answer never carries Redis's error text (it names addresses).
func (a *admin) readyz(w http.ResponseWriter, r *http.Request) {
	if a.draining.Load() {
		http.Error(w, "draining", http.StatusServiceUnavailable)
		return
	}
	if a.rdb != nil && a.redisDown(r.Context()) {
		if !a.degrade {
			http.Error(w, "redis unreachable", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready (degraded: redis unreachable, limits are per pod)\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// redisDown pings Redis, at most once per readyEvery; concurrent probes share one ping.
func (a *admin) redisDown(ctx context.Context) bool {
	a.pingMu.Lock()
	defer a.pingMu.Unlock()
	if now := time.Now(); now.Sub(a.pingAt) >= readyEvery {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		a.pingDown = a.rdb.Ping(ctx).Err() != nil
		a.pingAt = time.Now()
	}
	return a.pingDown
}

// state answers GET /state?host=example.com&host=... with each host's live state, as JSON.
func (a *admin) state(w http.ResponseWriter, r *http.Request) {
	hosts := r.URL.Query()["host"]
	if len(hosts) > stateMaxHosts {
		http.Error(w, fmt.Sprintf("at most %d host= per request", stateMaxHosts), http.StatusBadRequest)
		return
	}
	select {
	case a.stateSlots <- struct{}{}:
		defer func() { <-a.stateSlots }()
	default:
		w.Header().Set("Retry-After", "1")
		http.Error(w, "busy: too many /state requests at once", http.StatusTooManyRequests)
		return
	}
	var out map[string]any
	if a.obs != nil {
		out = a.sharedState(r.Context(), hosts)
	} else {
		out = a.localState(r.Context(), hosts)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// localState reads each host's state from the in-process semaphore.
func (a *admin) localState(ctx context.Context, hosts []string) map[string]any {
	out := make(map[string]any, len(hosts))
	for _, h := range hosts {
		st, err := a.thr.State(ctx, h)
		if err != nil {
			out[h] = map[string]string{"error": err.Error()}
			continue
		}
		group, _ := a.thr.Key(ctx, h)
		starting := min(a.thr.Hosts().Of(group).Starting, st.Holders)
		out[h] = hostState{Group: group, Holders: st.Holders - starting, Starting: starting, Waiters: st.Waiters, Limit: st.Limit,
			Delay: st.Delay.String(), NextStart: st.NextStart.String(), Backoff: st.Backoff.String(), BackoffLevel: st.BackoffLevel}
	}
	return out
}

// sharedState reads every host's state from Redis in one Observe call: one pipelined round trip, on
// one server one script for all the keys (on Cluster one per slot). The keys are each host's group
// (its turns) and, for a host in a group, its own key (its backoff).
func (a *admin) sharedState(ctx context.Context, hosts []string) map[string]any {
	out := make(map[string]any, len(hosts))
	type keyPair struct{ host, group string }
	pairs := make(map[string]keyPair, len(hosts))
	var list []string
	seen := map[string]bool{}
	for _, h := range hosts {
		o, err := policy.ParseKey(h)
		if err != nil {
			out[h] = map[string]string{"error": err.Error()}
			continue
		}
		group, err := a.thr.Key(ctx, h)
		if err != nil {
			out[h] = map[string]string{"error": err.Error()}
			continue
		}
		pairs[h] = keyPair{host: o.Key(), group: group}
		for _, k := range []string{group, o.Key()} {
			if !seen[k] {
				seen[k] = true
				list = append(list, k)
			}
		}
	}
	obs, err := a.obs.Observe(ctx, list)
	byKey := make(map[string]semaphore.HostState, len(obs.Hosts))
	for _, st := range obs.Hosts {
		byKey[st.Key] = st
	}
	for h, p := range pairs {
		if err != nil {
			out[h] = map[string]string{"error": err.Error()}
			continue
		}
		g, own := byKey[p.group], byKey[p.host]
		out[h] = hostState{Group: p.group, Holders: g.InFlight, Starting: g.Starting, Waiters: g.Waiting, Limit: g.Limit,
			Delay: g.Delay.String(), NextStart: g.NextStart.String(), Backoff: own.Backoff.String(), BackoffLevel: own.BackoffLevel}
	}
	return out
}

// observeClient is the client for an Observer: on one server the *redis.Client itself, so that the
// Observer puts every key in one script (it batches by slot for anything else).
func observeClient(c redis.UniversalClient) semaphore.ObserveClient {
	if o, ok := c.(oneServer); ok {
		return o.c
	}
	return c
}

// hostState is semaphore.State with durations as text ("250ms"), its holders split into those in
// flight at the origin and those granted but waiting for their start.
type hostState struct {
	Group        string `json:"group"` // the semaphore key: the host's own, or its group's (groupBy)
	Holders      int    `json:"inFlight"`
	Starting     int    `json:"starting"`
	Waiters      int    `json:"waiting"`
	Limit        int    `json:"limit"`
	Delay        string `json:"delay"`
	NextStart    string `json:"nextStartIn"`
	Backoff      string `json:"backoff"`
	BackoffLevel int    `json:"backoffLevel"`
}
