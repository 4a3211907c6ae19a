package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/crawlpolite/crawlpolite/internal/throttle"
)

// admin serves the sidecar's operational endpoints.
type admin struct {
	reg      *prometheus.Registry
	rdb      redis.UniversalClient // nil for the in-process backend
	degrade  bool                  // --on-redis-down=local: ready without Redis
	thr      *throttle.Throttle
	draining atomic.Bool
	quit     chan struct{}
	quitOnce sync.Once
}

func (a *admin) mux() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	m.HandleFunc("GET /readyz", a.readyz)
	m.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{Registry: a.reg}))
	m.HandleFunc("GET /state", a.state)
	m.HandleFunc("POST /quitquitquit", func(w http.ResponseWriter, r *http.Request) {
		// The admin port listens on the pod's address for the kubelet's probes; only the pod's
		// own containers may stop the sidecar.
		if !fromLoopback(r) {
			http.Error(w, "only from the pod itself (loopback)", http.StatusForbidden)
			return
		}
		a.quitOnce.Do(func() { close(a.quit) })
		_, _ = w.Write([]byte("draining\n"))
	})
	return m
}

func fromLoopback(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	return err == nil && ap.Addr().Unmap().IsLoopback()
}

// readyz is ready once the policy is loaded (it is before serving starts) and Redis answers; with
// --on-redis-down=local a Redis outage degrades rather than unreadies. Draining is never ready.
func (a *admin) readyz(w http.ResponseWriter, r *http.Request) {
	if a.draining.Load() {
		http.Error(w, "draining", http.StatusServiceUnavailable)
		return
	}
	if a.rdb != nil {
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		if err := a.rdb.Ping(ctx).Err(); err != nil {
			if !a.degrade {
				http.Error(w, "redis: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write([]byte("ready (degraded: redis unreachable, limits are per pod)\n"))
			return
		}
	}
	_, _ = w.Write([]byte("ready\n"))
}

// state answers GET /state?host=example.com&host=... with each host's live state, as JSON.
func (a *admin) state(w http.ResponseWriter, r *http.Request) {
	hosts := r.URL.Query()["host"]
	out := make(map[string]any, len(hosts))
	for _, h := range hosts {
		st, err := a.thr.State(r.Context(), h)
		if err != nil {
			out[h] = map[string]string{"error": err.Error()}
			continue
		}
		out[h] = hostState{Holders: st.Holders, Waiters: st.Waiters, Limit: st.Limit, Delay: st.Delay.String(),
			NextStart: st.NextStart.String(), Backoff: st.Backoff.String(), BackoffLevel: st.BackoffLevel}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// hostState is semaphore.State with durations as text ("250ms").
type hostState struct {
	Holders      int    `json:"inFlight"`
	Waiters      int    `json:"waiting"`
	Limit        int    `json:"limit"`
	Delay        string `json:"delay"`
	NextStart    string `json:"nextStartIn"`
	Backoff      string `json:"backoff"`
	BackoffLevel int    `json:"backoffLevel"`
}
