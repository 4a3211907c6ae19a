package main_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/crawlpolite/crawlpolite/internal/redistest"
)

// TestRobotsTakeTurns: four sidecars sharing Redis, their robots.txt caches empty, all start crawling
// one host (limit 1, minDelay 100 ms, Crawl-delay 0.2 s) at the same instant. The site never sees two
// requests in flight, robots.txt included (its fetch is slow, 150 ms, so an overlap would show), and
// each start comes at least its delay after the one before: a page 200 ms, robots.txt 100 ms (its
// fetch takes a turn before the Crawl-delay is known). No request waits on itself: every crawler gets
// pages.
func TestRobotsTakeTurns(t *testing.T) {
	const (
		minDelay   = 100 * time.Millisecond
		crawlDelay = 200 * time.Millisecond
		tolerance  = 5 * time.Millisecond // as TestStarvedSidecar: late starts push the gate
	)
	rs := redistest.Start(t)
	o := newSite(t, "User-agent: *\nCrawl-delay: 0.2\n", 150*time.Millisecond, 5*time.Millisecond)
	pol := writeSitePolicy(t, minDelay)
	var clients []*http.Client
	for range 4 {
		s := startSidecar(t, nil, "--redis=redis://"+rs.Addr, "--policy-file="+pol)
		clients = append(clients, s.client(t, false))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		codes = map[int]int{}
	)
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got := crawl(ctx, c, o.URL, string(rune('a'+i)), 2)
			mu.Lock()
			for k, v := range got {
				codes[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	arrivals, maxSeen := o.seen()
	robots := 0
	for _, a := range arrivals {
		if a.path == "/robots.txt" {
			robots++
		}
	}
	if robots == 0 || len(arrivals) < 5 {
		t.Fatalf("site saw %d requests, %d of them robots.txt: the crawl did not run", len(arrivals), robots)
	}
	if maxSeen > 1 {
		t.Errorf("site saw %d requests in flight at once, limit 1 (robots.txt included)", maxSeen)
	}
	short, smallest := shortGaps(arrivals, func(a arrival) time.Duration {
		if a.path == "/robots.txt" {
			return minDelay - tolerance
		}
		return crawlDelay - tolerance
	})
	if len(short) > 0 {
		t.Errorf("starts closer than their delay (less %v): %v", tolerance, short)
	}
	if len(codes) != 1 || codes[http.StatusOK] == 0 {
		t.Errorf("status codes %v: want only 200", codes)
	}
	t.Logf("%d requests (%d robots.txt), at most %d in flight, smallest gap %v, codes %v",
		len(arrivals), robots, maxSeen, smallest.Round(100*time.Microsecond), codes)
}
