package main_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/crawlpolite/crawlpolite/internal/redistest"
)

// TestRedisPartition is README's "network partition of one sidecar": two sidecars share a
// redis-server and crawl one host (limit 2, 100 ms pages, eight workers each, lease 4 s); sidecar b
// reaches Redis through a proxy that is blackholed (nothing forwarded, every socket left open) for
// 8 s mid-crawl, then healed. Sidecar a is never refused and has b's slots (so the whole limit, more
// than the rate it had) within the lease; until then it may wait, at most a lease; b must answer 503 with Retry-After within hangBound and send nothing to the origin; the
// origin never sees more than two limits in flight; b is back within 2 s of the heal.
func TestRedisPartition(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test: about 20 s")
	}
	const (
		hold    = 100 * time.Millisecond
		limit   = 2
		workers = 8
		lease   = 4 // seconds
	)
	rs := redistest.Start(t)
	px := redistest.StartProxy(t, rs.Addr)
	pol := writeFaultPolicy(t, limit)
	a := startSidecar(t, nil, "--redis=redis://"+rs.Addr, "--policy-file="+pol, "--lease=4s")
	b := startSidecar(t, nil, "--redis=redis://"+px.Addr, "--policy-file="+pol, "--lease=4s")
	o := newFaultOrigin(t, hold)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	aCodes, bCodes := newCodeLog(), newCodeLog()
	o.reset()
	wa := politeCrawl(ctx, a.client(t, false), o.URL, "a", workers, aCodes)
	wb := politeCrawl(ctx, b.client(t, false), o.URL, "b", workers, bCodes)

	const cut, healed, end = 4, 12, 20 // seconds of the run
	time.Sleep(time.Until(o.t0.Add(cut * time.Second)))
	px.Blackhole()
	time.Sleep(time.Until(o.t0.Add(healed * time.Second)))
	px.Heal()
	time.Sleep(time.Until(o.t0.Add(end * time.Second)))
	cancel()
	wa.Wait()
	wb.Wait()

	aPer, bPer := make([]int, end), make([]int, end)
	for s := range end {
		aPer[s], bPer[s] = o.seenBy("a", s, s+1), o.seenBy("b", s, s+1)
	}
	t.Logf("starts per second: a %v, b %v\na's answers:\n%sb's answers:\n%s", aPer, bPer, aCodes, bCodes)
	allowed := float64(limit) / hold.Seconds()

	_, _, maxAll := o.seen(0, end)
	if maxAll > 2*limit {
		t.Errorf("%d in flight at the origin during the run, at most %d allowed", maxAll, 2*limit)
	}
	// b's slots, those it held and those handed over to its queued waiters (which never hear of
	// them), run out within the lease: a waits for them, at most a lease, and is never refused; from
	// then on a alone uses the whole limit, at least the rate it had while both crawled.
	aBefore := float64(o.seenBy("a", 1, cut)) / float64(cut-1)
	freed := healed
	for s := healed - 1; s >= cut && float64(aPer[s]) > max(0.6*allowed, aBefore); s-- {
		freed = s
	}
	if freed-cut > lease+1 {
		t.Errorf("sidecar a had the whole limit only from cut + %ds, after the %ds lease (+1 s)", freed-cut, lease)
	}
	aSlow, _ := aCodes.slowest()
	if aSlow > (lease+1)*time.Second {
		t.Errorf("sidecar a: an answer took %v, more than the %ds lease (+1 s)", aSlow, lease)
	}
	if n := aCodes.count(http.StatusOK, 0, end); n != aCodes.total() {
		t.Errorf("sidecar a: %d of %d answers were not 200:\n%s", aCodes.total()-n, aCodes.total(), aCodes)
	}
	// b fails fast and sends nothing: its first calls time out (hangBound), then its breaker answers.
	slow, bare := bCodes.slowest()
	if slow > hangBound {
		t.Errorf("sidecar b: an answer took %v, more than the %v bound", slow, hangBound)
	}
	if bare > 0 {
		t.Errorf("sidecar b: %d answers 503 without Retry-After", bare)
	}
	for s := cut + 2; s < healed; s++ {
		if bCodes.count(http.StatusServiceUnavailable, s, s+1) == 0 {
			t.Errorf("sidecar b: no 503 in second %d of the partition: requests wait instead of failing fast", s)
		}
	}
	if n := o.seenBy("b", cut+1, healed); n > 0 {
		t.Errorf("sidecar b: %d requests reached the origin during the partition", n)
	}
	// Healed: b's next probe (within a second) reconnects.
	back := -1
	for s := healed; s < end; s++ {
		if bPer[s] > 0 {
			back = s - healed
			break
		}
	}
	if back < 0 || back > 2 {
		t.Errorf("sidecar b: first request at the origin at heal + %ds, want within 2 s", back)
	}
	checkWindow(t, "both, after the heal", o, healed+3, end, limit, 1, 0.5)
	t.Logf("max in flight %d (limit %d); a: %.1f req/s before, whole limit from cut + %ds, slowest answer %v; b: slowest answer %v, back at heal + %ds",
		maxAll, limit, aBefore, freed-cut, aSlow.Round(time.Millisecond), slow.Round(time.Millisecond), back)
}
