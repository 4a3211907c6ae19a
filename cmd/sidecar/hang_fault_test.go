package main_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/crawlpolite/crawlpolite/internal/redistest"
)

// hangBound is how long a request may wait for its 503 when Redis hangs: two calls of the sidecar's
// 500 ms Redis timeout (one retry), the pool's wait for a connection, and slack for a loaded CI
// machine. Once one call has timed out, the node's breaker answers the others at once. It is far
// below any waitTimeout (60 s by default).
const hangBound = 2500 * time.Millisecond

// TestRedisHangs: one sidecar, one host of limit 2, eight workers. Redis is paused (SIGSTOP: the
// kernel still accepts connections, nothing answers) for 5 s, resumed, then restarted with its data
// lost. Every request during the hang gets 503 with Retry-After within hangBound; the crawl is back
// at half its allowed rate or more within 2 s of the resume and 3 s of the restart.
func TestRedisHangs(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test: about 25 s")
	}
	const (
		hold    = 100 * time.Millisecond
		limit   = 2
		workers = 8
	)
	rs := redistest.Start(t)
	s := startSidecar(t, nil, "--redis=redis://"+rs.Addr, "--policy-file="+writeFaultPolicy(t, limit), "--lease=4s")
	o := newFaultOrigin(t, hold)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	codes := newCodeLog()
	o.reset()
	wg := politeCrawl(ctx, s.client(t, false), o.URL, "c0", workers, codes)

	const paused, resumed, restarted, end = 3, 8, 13, 20 // seconds of the run
	time.Sleep(paused * time.Second)
	rs.Pause()
	time.Sleep((resumed - paused) * time.Second)
	rs.Resume()
	time.Sleep((restarted - resumed) * time.Second)
	rs.Restart(t, time.Second)
	time.Sleep(time.Until(o.t0.Add(end * time.Second)))
	cancel()
	wg.Wait()

	t.Logf("starts per second %v\nanswers by status per second:\n%s", o.perSecond(), codes)
	slow, bare := codes.slowest()
	// A turn takes at most workers/limit holds (400 ms) when Redis answers: anything slower waited on Redis.
	if slow > hangBound {
		t.Errorf("a request took %v to be answered, more than the %v bound", slow, hangBound)
	}
	for sec := paused + 1; sec < resumed; sec++ {
		if codes.count(http.StatusServiceUnavailable, sec, sec+1) == 0 {
			t.Errorf("no 503 in second %d while Redis hung: requests wait instead of failing fast", sec)
		}
	}
	if bare > 0 {
		t.Errorf("%d answers 503 without Retry-After", bare)
	}
	if n, _, _ := o.seen(paused+1, resumed); n > 0 {
		t.Errorf("%d requests reached the origin while Redis hung", n)
	}
	_, _, maxAll := o.seen(0, end)
	if maxAll > 2*limit {
		t.Errorf("%d in flight during the run, at most %d allowed (one limit of over-admission)", maxAll, 2*limit)
	}
	checkWindow(t, "before the hang", o, 1, paused, limit, 1, 0.5)
	checkWindow(t, "after the resume", o, resumed+2, restarted, limit, 1, 0.5)
	checkWindow(t, "after the restart", o, restarted+1+3, end, limit, 1, 0.5)
	t.Logf("slowest answer %v; max in flight %d; after the resume at half rate from +%ds; after the restart (1 s down) from +%ds",
		slow.Round(time.Millisecond), maxAll, recoveredAt(o, resumed, restarted, limit)-resumed, recoveredAt(o, restarted, end, limit)-restarted)
}

// TestRedisBlackhole: a Redis address that accepts connections and never answers (a dead proxy in
// front of Redis). Every request gets 503 with Retry-After within hangBound.
func TestRedisBlackhole(t *testing.T) {
	addr := redistest.StartBlackhole(t)
	s := startSidecar(t, nil, "--redis=redis://"+addr, "--policy-file="+writeFaultPolicy(t, 2))
	o := newFaultOrigin(t, 0)
	c := s.client(t, false)
	var slowest time.Duration
	for i := range 6 {
		began := time.Now()
		resp, err := c.Get(fmt.Sprintf("%s/page/%d", o.URL, i))
		took := time.Since(began)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("request %d: %d, Retry-After %q; want 503 with Retry-After", i, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		if took > hangBound {
			t.Errorf("request %d took %v, more than the %v bound", i, took, hangBound)
		}
		slowest = max(slowest, took)
		time.Sleep(300 * time.Millisecond) // some requests probe, some meet the open breaker
	}
	t.Logf("slowest refusal %v", slowest.Round(time.Millisecond))
}
