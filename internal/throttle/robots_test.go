package throttle

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crawlpolite/crawlpolite/internal/policy"
	"github.com/crawlpolite/crawlpolite/pkg/robots"
	"github.com/crawlpolite/crawlpolite/pkg/semaphore"
)

// TestRobotsFetchTakesATurn: robots.txt fetches, and the redirects they follow to another host, take
// turns on the host they reach like any request: a site redirecting its robots.txt to a third party
// cannot make the sidecar hit that party faster than its delay (issue 10 item 13).
func TestRobotsFetchTakesATurn(t *testing.T) {
	const delay = 400 * time.Millisecond
	var (
		mu     sync.Mutex
		starts []time.Time
	)
	third := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		starts = append(starts, time.Now())
		mu.Unlock()
		_, _ = io.WriteString(w, "User-agent: *\nAllow: /\n")
	}))
	t.Cleanup(third.Close)
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, third.URL+"/robots.txt?from="+r.Host, http.StatusFound)
	}))
	t.Cleanup(site.Close)

	sem, err := semaphore.NewLocal(semaphore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sem.Close() })
	pol, err := policy.Parse([]byte("defaults:\n  maxConcurrency: 1\n  minDelay: " + delay.String() + "\n  waitTimeout: 10s\n"))
	if err != nil {
		t.Fatal(err)
	}
	fetcher := &robots.Fetcher{}
	thr, err := New(sem, nil, robots.NewCache(fetcher, robots.CacheOptions{}), pol, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	fetcher.Gate = thr.RobotsGate

	admit := func(url string) {
		turn, err := thr.Admit(t.Context(), get(url))
		if err != nil {
			t.Fatalf("admit %s: %v", url, err)
		}
		if err := turn.Wait(t.Context()); err != nil {
			t.Fatal(err)
		}
		turn.Release()
	}
	// The third party's own robots.txt, then a page of it (not recorded: pages are not served
	// there, the admit's turn is what counts).
	admit(third.URL + "/page")
	pageStart := time.Now()
	// The site's robots.txt redirects to the third party: that hop waits for the third party's turn.
	admit(site.URL + "/page")

	mu.Lock()
	defer mu.Unlock()
	if len(starts) != 2 {
		t.Fatalf("third party got %d robots.txt requests, want 2 (its own, the redirected one)", len(starts))
	}
	if gap := starts[1].Sub(pageStart); gap < delay-50*time.Millisecond {
		t.Fatalf("the redirected robots.txt reached the third party %v after its last turn, want at least its delay %v", gap, delay)
	}
}
