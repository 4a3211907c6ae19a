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

	"github.com/crawlpolite/crawlpolite/internal/throttle"
)

// Admin endpoints must not let one request cost the shared Redis more than a few calls: /state
// answers at most stateMaxHosts hosts, at most stateConcurrency requests at once, and /readyz pings
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

func newAdmin(reg *prometheus.Registry, rdb redis.UniversalClient, degrade bool, thr *throttle.Throttle, token string) *admin {
	return &admin{reg: reg, rdb: rdb, degrade: degrade, thr: thr, token: token,
		quit: make(chan struct{}), stateSlots: make(chan struct{}, stateConcurrency)}
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
	out := make(map[string]any, len(hosts))
	split := a.phases(r.Context(), hosts)
	for _, h := range hosts {
		st, err := a.thr.State(r.Context(), h)
		if err != nil {
			out[h] = map[string]string{"error": err.Error()}
			continue
		}
		inFlight, starting := split(h, st.Holders)
		group, _ := a.thr.Key(r.Context(), h)
		out[h] = hostState{Group: group, Holders: inFlight, Starting: starting, Waiters: st.Waiters, Limit: st.Limit, Delay: st.Delay.String(),
			NextStart: st.NextStart.String(), Backoff: st.Backoff.String(), BackoffLevel: st.BackoffLevel}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
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
