package robots

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestFetchStatusCodes(t *testing.T) {
	const body = "User-agent: *\nDisallow: /private\n"
	cases := map[string]struct {
		handler http.HandlerFunc
		status  Status
		private bool // /private allowed?
		public  bool // /public allowed?
		ttl     time.Duration
	}{
		"200 parses":            {serve(200, body, ""), Fetched, false, true, 24 * time.Hour},
		"200 max-age in bounds": {serve(200, body, "max-age=7200"), Fetched, false, true, 2 * time.Hour},
		"200 max-age too short": {serve(200, body, "public, max-age=60"), Fetched, false, true, time.Hour},
		"200 max-age too long":  {serve(200, body, "max-age=999999"), Fetched, false, true, 24 * time.Hour},
		"404 allows all":        {serve(404, body, ""), Unavailable, true, true, 24 * time.Hour},
		"403 allows all":        {serve(403, body, ""), Unavailable, true, true, 24 * time.Hour},
		"429 disallows all":     {serve(429, body, ""), Unreachable, false, false, 5 * time.Minute},
		"500 disallows all":     {serve(500, "User-agent: *\nAllow: /\n", ""), Unreachable, false, false, 5 * time.Minute},
		"503 disallows all":     {serve(503, body, ""), Unreachable, false, false, 5 * time.Minute},
		"redirect w/o location": {serve(302, body, ""), Unavailable, true, true, 5 * time.Minute},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(c.handler)
			defer srv.Close()
			r := newFetcher(srv).Fetch(t.Context(), srv.URL)
			if r.Status != c.status || r.TTL != c.ttl {
				t.Fatalf("status %v ttl %v (code %d, err %v), want %v %v", r.Status, r.TTL, r.Code, r.Err, c.status, c.ttl)
			}
			g := r.For("bot")
			if g.Allowed("/private") != c.private || g.Allowed("/public") != c.public {
				t.Fatalf("/private allowed %v, /public allowed %v; want %v, %v", g.Allowed("/private"), g.Allowed("/public"), c.private, c.public)
			}
			if !g.Allowed("/robots.txt") {
				t.Fatal("/robots.txt must stay allowed")
			}
		})
	}
}

func serve(code int, body, cacheControl string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/robots.txt" {
			http.NotFound(w, r)
			return
		}
		if cacheControl != "" {
			w.Header().Set("Cache-Control", cacheControl)
		}
		w.WriteHeader(code)
		fmt.Fprint(w, body)
	}
}

func newFetcher(srv *httptest.Server) *Fetcher {
	return &Fetcher{Client: srv.Client(), UserAgent: "crawlpolite-test", Timeout: 2 * time.Second}
}

// hops serves /robots.txt as a chain: /r/N redirects to /r/N-1 and /r/0 serves the file.
func hops(n int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		k := n
		if r.URL.Path != "/robots.txt" {
			if _, err := fmt.Sscanf(r.URL.Path, "/r/%d", &k); err != nil {
				http.NotFound(w, r)
				return
			}
		}
		if k == 0 {
			fmt.Fprint(w, "User-agent: *\nDisallow: /private\n")
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/r/%d", k-1), http.StatusMovedPermanently)
	}
}

func TestFetchRedirects(t *testing.T) {
	t.Run("five hops are followed", func(t *testing.T) {
		srv := httptest.NewServer(hops(5))
		defer srv.Close()
		if r := newFetcher(srv).Fetch(t.Context(), srv.URL); r.Status != Fetched || r.For("x").Allowed("/private") {
			t.Fatalf("got %v (%v)", r.Status, r.Err)
		}
	})
	t.Run("six hops: unavailable", func(t *testing.T) {
		srv := httptest.NewServer(hops(6))
		defer srv.Close()
		if r := newFetcher(srv).Fetch(t.Context(), srv.URL); r.Status != Unavailable || !r.For("x").Allowed("/private") {
			t.Fatalf("got %v (%v)", r.Status, r.Err)
		}
	})
	t.Run("loop: unavailable", func(t *testing.T) {
		var n atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			http.Redirect(w, r, "/robots.txt", http.StatusFound)
		}))
		defer srv.Close()
		r := newFetcher(srv).Fetch(t.Context(), srv.URL)
		if r.Status != Unavailable || n.Load() != 6 {
			t.Fatalf("got %v after %d requests, want unavailable after 6", r.Status, n.Load())
		}
	})
	t.Run("cross-host", func(t *testing.T) {
		other := httptest.NewServer(serve(200, "User-agent: *\nDisallow: /elsewhere\n", ""))
		defer other.Close()
		srv := httptest.NewServer(http.RedirectHandler(other.URL+"/robots.txt", http.StatusMovedPermanently))
		defer srv.Close()
		r := newFetcher(srv).Fetch(t.Context(), srv.URL)
		if r.Status != Fetched || r.For("x").Allowed("/elsewhere") {
			t.Fatalf("got %v (%v)", r.Status, r.Err)
		}
	})
}

func TestFetchSizeCapAndTimeout(t *testing.T) {
	t.Run("body beyond the cap is not read", func(t *testing.T) {
		big := "User-agent: *\nDisallow: /early\n" + strings.Repeat("#", MaxSize) + "\nDisallow: /late\n"
		srv := httptest.NewServer(serve(200, big, ""))
		defer srv.Close()
		r := newFetcher(srv).Fetch(t.Context(), srv.URL)
		g := r.For("x")
		if r.Status != Fetched || g.Allowed("/early") || !g.Allowed("/late") {
			t.Fatalf("status %v, /early allowed %v, /late allowed %v", r.Status, g.Allowed("/early"), g.Allowed("/late"))
		}
	})
	t.Run("slow origin: unreachable", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(release)
		f := newFetcher(srv)
		f.Timeout = 200 * time.Millisecond
		r := f.Fetch(t.Context(), srv.URL)
		if r.Status != Unreachable || r.Err == nil || r.For("x").Allowed("/") {
			t.Fatalf("got %v (%v)", r.Status, r.Err)
		}
	})
	t.Run("connection refused: unreachable", func(t *testing.T) {
		srv := httptest.NewServer(serve(200, "", ""))
		url := srv.URL
		srv.Close()
		if r := newFetcher(srv).Fetch(t.Context(), url); r.Status != Unreachable {
			t.Fatalf("got %v", r.Status)
		}
	})
}

// gate records the turns a Fetcher takes.
type gate struct {
	mu      sync.Mutex
	hosts   []string
	started atomic.Int32
	done    atomic.Int32
	fail    error // returned by Start
}

func (g *gate) take(_ context.Context, u *url.URL) (Turn, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hosts = append(g.hosts, u.Host)
	return g, nil
}

func (g *gate) Start(context.Context) error {
	g.started.Add(1)
	return g.fail
}

func (g *gate) Done() { g.done.Add(1) }

// TestFetchGate: every robots.txt request, each redirect hop to another host included, takes a turn
// from the gate before it is sent and ends it after; a refused turn is a failure that is not cached.
func TestFetchGate(t *testing.T) {
	var g gate
	var early atomic.Int32 // requests that arrived before their turn started
	var requests atomic.Int32
	check := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n := requests.Add(1); g.started.Load() < n {
				early.Add(1)
			}
			h.ServeHTTP(w, r)
		})
	}
	third := httptest.NewServer(check(serve(200, "User-agent: *\nDisallow: /elsewhere\n", "")))
	defer third.Close()
	srv := httptest.NewServer(check(http.RedirectHandler(third.URL+"/robots.txt", http.StatusMovedPermanently)))
	defer srv.Close()
	f := newFetcher(srv)
	f.Gate = g.take
	r := f.Fetch(t.Context(), srv.URL)
	if r.Status != Fetched || r.For("x").Allowed("/elsewhere") {
		t.Fatalf("got %v (%v)", r.Status, r.Err)
	}
	want := []string{strings.TrimPrefix(srv.URL, "http://"), strings.TrimPrefix(third.URL, "http://")}
	if fmt.Sprint(g.hosts) != fmt.Sprint(want) || g.done.Load() != 2 || early.Load() != 0 {
		t.Fatalf("turns for %v (want %v), %d done, %d requests before their turn", g.hosts, want, g.done.Load(), early.Load())
	}

	t.Run("six hops take six turns", func(t *testing.T) {
		var g gate
		srv := httptest.NewServer(hops(6))
		defer srv.Close()
		f := newFetcher(srv)
		f.Gate = g.take
		if r := f.Fetch(t.Context(), srv.URL); r.Status != Unavailable || len(g.hosts) != 6 || g.done.Load() != 6 {
			t.Fatalf("got %v after %d turns (%d done)", r.Status, len(g.hosts), g.done.Load())
		}
	})
	t.Run("refused turn: unreachable, not cached", func(t *testing.T) {
		srv, hits := origin(t, 200, 0)
		g := gate{fail: errors.New("semaphore down")}
		f := newFetcher(srv)
		f.Gate = g.take
		c := NewCache(f, CacheOptions{})
		for range 2 {
			r := c.Get(t.Context(), srv.URL)
			if r.Status != Unreachable || r.TTL != 0 || !errors.Is(r.Err, g.fail) {
				t.Fatalf("got %v ttl %v (%v)", r.Status, r.TTL, r.Err)
			}
		}
		if len(g.hosts) != 2 || g.done.Load() != 2 || hits.Load() != 0 {
			t.Fatalf("%d turns, %d done, %d requests: want 2, 2, 0", len(g.hosts), g.done.Load(), hits.Load())
		}
	})
	t.Run("zero Fetcher", func(t *testing.T) {
		srv := httptest.NewServer(serve(200, "User-agent: *\nDisallow: /private\n", ""))
		defer srv.Close()
		var f Fetcher
		if r := f.Fetch(t.Context(), srv.URL); r.Status != Fetched || r.For("x").Allowed("/private") {
			t.Fatalf("got %v (%v)", r.Status, r.Err)
		}
	})
}

// TestFetchHeadLimit: a response head beyond MaxHeaderBytes is refused (the transport's default
// would read 10 MiB of it), even through a client whose transport sets no limit.
func TestFetchHeadLimit(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		for i := range 20 {
			w.Header().Set(fmt.Sprintf("X-Filler-%d", i), strings.Repeat("x", 8<<10))
		}
		fmt.Fprint(w, "User-agent: *\nAllow: /\n")
	}))
	srv.Config.MaxHeaderBytes = 1 << 20
	srv.Start()
	defer srv.Close()
	if r := newFetcher(srv).Fetch(t.Context(), srv.URL); r.Status != Unreachable {
		t.Fatalf("a 160 KiB head gave %v, want Unreachable", r.Status)
	}
}
