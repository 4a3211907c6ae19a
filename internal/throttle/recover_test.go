package throttle

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crawlpolite/crawlpolite/internal/policy"
	"github.com/crawlpolite/crawlpolite/internal/proxy"
	"github.com/crawlpolite/crawlpolite/pkg/robots"
	"github.com/crawlpolite/crawlpolite/pkg/semaphore"
)

// panicTransport panics in the robots.txt round trip to one host: in the detached lookup
// goroutine, while the fetch holds its turn on that host.
type panicTransport struct {
	next  http.RoundTripper
	host  string
	count atomic.Int32
}

func (p *panicTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host == p.host {
		p.count.Add(1)
		panic("hostile robots.txt")
	}
	return p.next.RoundTrip(r)
}

// syncLog is a log sink safe for the proxy's goroutines.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRobotsPanicIs500: a panic in a robots.txt lookup (the cache's detached goroutine, which
// net/http's recover does not cover) fails the request through the proxy with 500
// proxy_internal_error, is counted in crawlpolite_panics_total{where="robots"} and
// crawlpolite_robots_lookups_total{status="internal_error"}, logged, releases the turn the fetch
// held on its host, and the process goes on serving other hosts.
func TestRobotsPanicIs500(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/robots.txt" {
			_, _ = io.WriteString(w, "User-agent: *\nAllow: /\n")
			return
		}
		_, _ = io.WriteString(w, "fine")
	}))
	t.Cleanup(ok.Close)
	boom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the origin got %s: a request whose robots.txt lookup panicked went through", r.URL)
	}))
	t.Cleanup(boom.Close)
	boomHost := strings.TrimPrefix(boom.URL, "http://")

	guard, err := proxy.NewGuard("127.0.0.0/8,::1/128")
	if err != nil {
		t.Fatal(err)
	}
	popts := proxy.Options{AnyConnectPort: true, ResponseHeaderTimeout: 5 * time.Second}
	up := proxy.NewUpstream(popts, guard)
	sem, err := semaphore.NewLocal(semaphore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sem.Close() })
	pol, err := policy.Parse([]byte("defaults:\n  maxConcurrency: 1\n  minDelay: 0s\n  waitTimeout: 2s\n"))
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncLog{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	reg := prometheus.NewRegistry()
	rt := &panicTransport{next: up.Client().Transport, host: boomHost}
	fetcher := &robots.Fetcher{Client: &http.Client{Transport: rt}}
	var srv *proxy.Server
	cache := robots.NewCache(fetcher, robots.CacheOptions{OnPanic: func(v any) { srv.RecordPanic("robots", v) }})
	thr, err := New(sem, nil, cache, pol, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	fetcher.Gate = thr.RobotsGate
	ca, err := proxy.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	srv, err = proxy.New(popts, thr, ca, up, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: ln.Addr().String()})}}
	get := func(u string) (int, string, string) {
		t.Helper()
		resp, err := client.Get(u)
		if err != nil {
			t.Fatalf("GET %s: no answer: %v", u, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Proxy-Status"), string(b)
	}

	status, ps, _ := get(boom.URL + "/page")
	if status != http.StatusInternalServerError || !strings.Contains(ps, "proxy_internal_error") {
		t.Errorf("a panicking robots.txt lookup answered %d %q, want 500 proxy_internal_error", status, ps)
	}
	if n := rt.count.Load(); n != 1 {
		t.Errorf("the robots.txt round trip ran %d times, want 1", n)
	}
	if n := counterOf(t, reg, "crawlpolite_panics_total", "where", "robots"); n != 1 {
		t.Errorf(`crawlpolite_panics_total{where="robots"} = %v, want 1`, n)
	}
	if n := counterOf(t, reg, "crawlpolite_robots_lookups_total", "status", "internal_error"); n != 1 {
		t.Errorf(`crawlpolite_robots_lookups_total{status="internal_error"} = %v, want 1`, n)
	}
	l := logs.String()
	if strings.Count(l, `"msg":"panic recovered"`) != 1 || !strings.Contains(l, `"where":"robots"`) || !strings.Contains(l, "hostile robots.txt") {
		t.Errorf("want one panic log line naming robots and the panic, got:\n%s", l)
	}

	// The fetch's turn on the host (limit 1) was given back when the panic unwound it.
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	turn, err := thr.RobotsGate(ctx, &url.URL{Scheme: "http", Host: boomHost, Path: "/robots.txt"})
	if err != nil {
		t.Fatalf("the host's only slot is still held after the panic: %v", err)
	}
	if err := turn.Start(ctx); err != nil {
		t.Fatal(err)
	}
	turn.Done()

	// The process goes on: another host is served.
	if status, _, body := get(ok.URL + "/page"); status != http.StatusOK || body != "fine" {
		t.Errorf("after the panic, another host answered %d %q", status, body)
	}
}

// counterOf is the value of the counter name{label=value} gathered from reg (0 if absent).
func counterOf(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
