package main_test

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/crawlpolite/crawlpolite/internal/redistest"
)

// TestSentinelFailover: two sidecars on a Sentinel-managed primary (two replicas, three sentinels,
// down-after 1 s), two hosts of limit 2, eight workers per sidecar per host; SIGKILL of the primary.
// Once the sentinels have promoted a replica, the sidecars must follow within a few seconds; the
// limit may be exceeded only around the failover, by at most one limit.
func TestSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test: about 30 s")
	}
	const (
		hold    = 100 * time.Millisecond
		limit   = 2
		workers = 8
		before  = 6
		after   = 18
		follow  = 3 // seconds after the promotion by which the sidecars are back to normal
		win     = 2
	)
	st := redistest.StartSentinel(t)
	q := url.Values{"master_name": {redistest.SentinelMaster}}
	for _, a := range st.Addrs()[1:] {
		q.Add("addr", a)
	}
	u := "redis+sentinel://" + st.Addrs()[0] + "?" + q.Encode()
	pol := writeFaultPolicy(t, limit)
	var cars []*sidecar
	for range 2 {
		cars = append(cars, startSidecar(t, nil, "--redis="+u, "--policy-file="+pol, "--lease=4s"))
	}
	origins := []*faultOrigin{newFaultOrigin(t, hold), newFaultOrigin(t, hold)}
	ctx, cancel := context.WithTimeout(t.Context(), time.Duration(before+after)*time.Second)
	defer cancel()
	codes := newCodeLog()
	for _, o := range origins {
		o.reset()
	}
	var waits []func()
	for i, s := range cars {
		c := s.client(t, false)
		for j, o := range origins {
			waits = append(waits, politeCrawl(ctx, c, o.URL, fmt.Sprintf("c%dh%d", i, j), workers, codes).Wait)
		}
	}
	time.Sleep(before * time.Second)
	old := st.Master.Addr
	st.Master.Kill()
	promoted, took, err := st.WaitFailover(old, 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("killed primary %s; sentinels promoted %s after %v", old, promoted, took.Round(time.Millisecond))
	for _, w := range waits {
		w()
	}
	end := before + after
	back := before + int(took.Seconds()) + 1 + follow
	if back+2*win > end {
		t.Fatalf("the promotion took %v, too late to watch the sidecars follow", took)
	}
	for j, o := range origins {
		name := fmt.Sprintf("host %d", j)
		t.Logf("%s: starts per second %v", name, o.perSecond())
		_, _, maxAll := o.seen(0, end)
		if maxAll > 2*limit {
			t.Errorf("%s: %d in flight during the run, at most %d allowed (one limit of over-admission)", name, maxAll, 2*limit)
		}
		checkWindow(t, name+" before the kill", o, 2, before, limit, win, 0.5)
		checkWindow(t, name+" from promotion+3s", o, back, end, limit, win, 0.5)
		t.Logf("%s: max in flight %d; at half rate or more from kill+%ds on", name, maxAll, recoveredAt(o, before, end, limit)-before)
	}
	t.Logf("answers by status per second:\n%s", codes)
}

// recoveredAt is the first second from which o served at least half the rate limit allows in
// every second until end.
func recoveredAt(o *faultOrigin, from, end, limit int) int {
	rec := from
	for s := from; s < end; s++ {
		if n, _, _ := o.seen(s, s+1); float64(n) < 0.5*float64(limit)/o.hold.Seconds() {
			rec = s + 1
		}
	}
	return rec
}
