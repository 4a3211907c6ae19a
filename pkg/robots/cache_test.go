package robots

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crawlpolite/crawlpolite/internal/redistest"
)

// TestMain lets the test binary act as a second process sharing the cache (ROBOTS_HELPER set).
func TestMain(m *testing.M) {
	if os.Getenv("ROBOTS_HELPER") != "" {
		os.Exit(runCacheHelper())
	}
	os.Exit(m.Run())
}

// runCacheHelper makes 8 concurrent Gets of ROBOTS_BASE through a cache on ROBOTS_REDIS and prints
// one JSON line per result.
func runCacheHelper() int {
	c := redis.NewClient(&redis.Options{Addr: os.Getenv("ROBOTS_REDIS")})
	defer c.Close()
	cache := NewCache(&Fetcher{Client: http.DefaultClient}, CacheOptions{Store: NewRedisStore(c, os.Getenv("ROBOTS_PREFIX"))})
	results := make(chan string, 8)
	for range 8 {
		go func() {
			r := cache.Get(context.Background(), os.Getenv("ROBOTS_BASE"))
			b, _ := json.Marshal(map[string]any{"status": r.Status.String(), "private": r.For("bot").Allowed("/private")})
			results <- string(b)
		}()
	}
	for range 8 {
		fmt.Println(<-results)
	}
	return 0
}

// TestMarshalRoundTrip: the text the shared cache stores parses to rules that answer every
// conformance case as the original does.
func TestMarshalRoundTrip(t *testing.T) {
	cases := loadSpecCases(t)
	n := 0
	for _, c := range cases {
		if c.Robots == nil {
			continue
		}
		orig := Parse([]byte(*c.Robots))
		text, err := orig.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		again := Parse(text)
		for _, agent := range []string{c.Agent, "otherbot"} {
			if a, b := orig.Allowed(agent, c.Path), again.Allowed(agent, c.Path); a != b {
				t.Errorf("%s: agent %s: %v before, %v after round trip\n%s", c.Name, agent, a, b, text)
			}
			if a, b := orig.For(agent).CrawlDelay(), again.For(agent).CrawlDelay(); a != b {
				t.Errorf("%s: crawl delay %v became %v", c.Name, a, b)
			}
		}
		n++
	}
	if n < 390 {
		t.Fatalf("only %d cases", n)
	}
}

// origin serves robots.txt slowly enough for callers to overlap, and counts requests.
func origin(t *testing.T, code int, delay time.Duration) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		time.Sleep(delay)
		w.WriteHeader(code)
		fmt.Fprint(w, "User-agent: *\nDisallow: /private\nCrawl-delay: 0.2\n")
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestCacheLocal(t *testing.T) {
	srv, hits := origin(t, 200, 100*time.Millisecond)
	f := &Fetcher{Client: srv.Client(), MinTTL: 300 * time.Millisecond, MaxTTL: 300 * time.Millisecond}
	c := NewCache(f, CacheOptions{})
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := c.Get(t.Context(), srv.URL); r.Status != Fetched || r.For("x").Allowed("/private") {
				t.Errorf("got %v", r.Status)
			}
		}()
	}
	wg.Wait()
	if n := hits.Load(); n != 1 {
		t.Fatalf("%d fetches for 20 concurrent callers, want 1", n)
	}
	c.Get(t.Context(), srv.URL)
	if n := hits.Load(); n != 1 {
		t.Fatalf("fresh entry fetched again (%d)", n)
	}
	time.Sleep(350 * time.Millisecond)
	c.Get(t.Context(), srv.URL)
	if n := hits.Load(); n != 2 {
		t.Fatalf("expired entry not fetched again (%d fetches)", n)
	}
}

// TestCacheCallerGone: the caller that started a lookup going away neither fails the lookup for the
// others nor caches a failure.
func TestCacheCallerGone(t *testing.T) {
	srv, hits := origin(t, 200, 200*time.Millisecond)
	c := NewCache(&Fetcher{Client: srv.Client()}, CacheOptions{})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if r := c.Get(ctx, srv.URL); r.Status != Unreachable || r.Err == nil {
		t.Fatalf("cancelled caller got %v, want Unreachable with its context's error", r.Status)
	}
	if r := c.Get(t.Context(), srv.URL); r.Status != Fetched {
		t.Fatalf("next caller got %v (%v), want the fetched file", r.Status, r.Err)
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1", n)
	}
}

// TestCacheResultsAreCopies: what one caller does to its Result does not reach the next caller, and
// the shared Rules cannot be overwritten through UnmarshalText.
func TestCacheResultsAreCopies(t *testing.T) {
	srv, hits := origin(t, 200, 0)
	c := NewCache(&Fetcher{Client: srv.Client()}, CacheOptions{})
	r := c.Get(t.Context(), srv.URL)
	if r.Status != Fetched || r.For("x").Allowed("/private") {
		t.Fatalf("got %v (%v), want the fetched file", r.Status, r.Err)
	}
	r.Status, r.Err, r.TTL = Unavailable, errors.New("changed by a caller"), 0
	if err := r.Rules.UnmarshalText([]byte("user-agent: *\nallow: /\n")); err == nil {
		t.Error("UnmarshalText overwrote the cached rules")
	}
	again := c.Get(t.Context(), srv.URL)
	if again.Status != Fetched || again.Err != nil || again.TTL <= 0 || again.For("x").Allowed("/private") {
		t.Fatalf("the next caller got %v ttl %v (%v): a caller's change reached it", again.Status, again.TTL, again.Err)
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1", n)
	}
}

func TestCacheFailures(t *testing.T) {
	srv, hits := origin(t, 503, 0)
	c := NewCache(&Fetcher{Client: srv.Client(), FailureTTL: 200 * time.Millisecond}, CacheOptions{})
	for range 3 {
		if r := c.Get(t.Context(), srv.URL); r.Status != Unreachable || r.For("x").Allowed("/public") {
			t.Fatalf("503 gave %v", r.Status)
		}
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("a failure was fetched %d times within its TTL, want 1", n)
	}
	time.Sleep(250 * time.Millisecond)
	if r := c.Get(t.Context(), srv.URL); r.TTL != 400*time.Millisecond {
		t.Fatalf("second consecutive failure cached %v, want doubled to 400ms", r.TTL)
	}
	if n := hits.Load(); n != 2 {
		t.Fatalf("failure not retried after its TTL (%d fetches)", n)
	}
	time.Sleep(250 * time.Millisecond)
	c.Get(t.Context(), srv.URL)
	if n := hits.Load(); n != 2 {
		t.Fatalf("retried before the doubled TTL ran out (%d fetches)", n)
	}
}

func TestCacheByteBudget(t *testing.T) {
	srv, _ := origin(t, 200, 0)
	c := NewCache(&Fetcher{Client: srv.Client()}, CacheOptions{MaxBytes: 4096})
	for i := range 100 {
		c.Get(t.Context(), fmt.Sprintf("%s/h%d", srv.URL, i)) // distinct keys, same origin
	}
	hosts, bytes := c.Len()
	if bytes > 4096 || hosts == 0 || hosts >= 100 {
		t.Fatalf("%d hosts in %d bytes with a 4096-byte budget", hosts, bytes)
	}
}

// TestCacheOneFetchAcrossProcesses: 8 callers here and 8 in another process share one redis-server;
// the origin sees exactly one fetch.
func TestCacheOneFetchAcrossProcesses(t *testing.T) {
	rs := redistest.Start(t)
	srv, hits := origin(t, 200, 300*time.Millisecond)
	prefix := fmt.Sprintf("robots-test-%d", time.Now().UnixNano())
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "ROBOTS_HELPER=1", "ROBOTS_REDIS="+rs.Addr, "ROBOTS_BASE="+srv.URL, "ROBOTS_PREFIX="+prefix)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(&redis.Options{Addr: rs.Addr})
	defer client.Close()
	cache := NewCache(&Fetcher{Client: srv.Client()}, CacheOptions{Store: NewRedisStore(client, prefix)})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := cache.Get(t.Context(), srv.URL); r.Status != Fetched || r.For("bot").Allowed("/private") {
				t.Errorf("here: %v", r.Status)
			}
		}()
	}
	wg.Wait()
	sc := bufio.NewScanner(out)
	lines := 0
	for sc.Scan() {
		lines++
		if !strings.Contains(sc.Text(), `"status":"fetched"`) || !strings.Contains(sc.Text(), `"private":false`) {
			t.Errorf("other process: %s", sc.Text())
		}
	}
	if err := cmd.Wait(); err != nil || lines != 8 {
		t.Fatalf("other process: %v, %d results", err, lines)
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("origin fetched %d times by 16 callers in 2 processes, want 1", n)
	}
	if d := cache.Get(t.Context(), srv.URL).For("bot").CrawlDelay(); d != 200*time.Millisecond {
		t.Fatalf("crawl delay through the shared cache: %v", d)
	}
}

// BenchmarkCacheMemory100k reports the heap held by 100k cached hosts with a typical small file.
func BenchmarkCacheMemory100k(b *testing.B) {
	body := "User-agent: *\nDisallow: /admin/\nDisallow: /cart\nDisallow: /*?session=\nAllow: /admin/public\nCrawl-delay: 1\n"
	for range b.N {
		c := NewCache(&Fetcher{}, CacheOptions{MaxBytes: 1 << 30})
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i := range 100_000 {
			c.mu.Lock()
			c.putLocked(fmt.Sprintf("https://host%d.example", i), Result{Status: Fetched, Rules: Parse([]byte(body)), TTL: time.Hour}, time.Hour, 0)
			c.mu.Unlock()
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/100_000, "bytes/host")
		_, counted := c.Len()
		b.ReportMetric(float64(counted)/100_000, "counted-bytes/host")
		runtime.KeepAlive(c)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestCachePanic: a panic in the detached lookup (here the transport's) is recovered: the callers
// get Unreachable with ErrInternal, OnPanic hears of it once, the failure is cached like a failed
// fetch, and the process goes on.
func TestCachePanic(t *testing.T) {
	var panics, trips atomic.Int32
	client := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		trips.Add(1)
		panic("hostile input")
	})}
	c := NewCache(&Fetcher{Client: client}, CacheOptions{OnPanic: func(any) { panics.Add(1) }})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := c.Get(t.Context(), "http://panic.example")
			if r.Status != Unreachable || !errors.Is(r.Err, ErrInternal) || r.For("x").Allowed("/") {
				t.Errorf("got %v (%v), want Unreachable with ErrInternal", r.Status, r.Err)
			}
		}()
	}
	wg.Wait()
	c.Get(t.Context(), "http://panic.example")
	if panics.Load() != 1 || trips.Load() != 1 {
		t.Fatalf("%d panics reported for %d fetches, want 1 and 1 (the failure cached)", panics.Load(), trips.Load())
	}
}

// TestCacheMaxFetches: at most MaxFetches robots.txt fetches are in flight from one cache.
func TestCacheMaxFetches(t *testing.T) {
	var inFlight, peak atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(30 * time.Millisecond)
		inFlight.Add(-1)
		fmt.Fprint(w, "User-agent: *\nDisallow: /x\n")
	}))
	defer srv.Close()
	c := NewCache(&Fetcher{Client: srv.Client()}, CacheOptions{MaxFetches: 3})
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := c.Get(t.Context(), fmt.Sprintf("%s/h%d", srv.URL, i)); r.Status != Fetched {
				t.Errorf("got %v", r.Status)
			}
		}()
	}
	wg.Wait()
	if p := peak.Load(); p != 3 {
		t.Fatalf("%d fetches in flight at once, want 3", p)
	}
}
