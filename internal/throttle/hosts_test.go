package throttle

import (
	"context"
	"testing"
	"time"

	"github.com/crawlpolite/crawlpolite/pkg/semaphore"
)

// TestHostsCounts follows requests through their phases: one in flight, one granted behind the
// delay gate (starting), one queued (waiting); each release moves the counts back, a refused request
// leaves nothing, and an idle key is forgotten after the Report that lists it as used.
func TestHostsCounts(t *testing.T) {
	thr := newThrottle(t, "defaults:\n  maxConcurrency: 2\n  minDelay: 2s\n  robots: ignore\n  waitTimeout: 10s\n")
	ctx := t.Context()
	want := func(inFlight, starting, waiting int) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Second)
		for {
			got, _ := thr.Hosts().Snapshot("", 10)
			var l semaphore.Load
			if len(got) > 0 {
				l = got[0]
			}
			if l.InFlight == inFlight && l.Starting == starting && l.Waiting == waiting {
				if l.Busy() > 0 && (l.Key != "a.test" || l.Robots != "ignored" || l.DelaySource != "policy") {
					t.Errorf("load %+v", l)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("load %+v, want %d in flight, %d starting, %d waiting", l, inFlight, starting, waiting)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	first, err := thr.Admit(ctx, get("http://a.test/1"))
	if err != nil {
		t.Fatal(err)
	}
	want(0, 1, 0)
	if err := first.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	want(1, 0, 0)
	second, err := thr.Admit(ctx, get("http://a.test/2")) // starts 2s after the first
	if err != nil {
		t.Fatal(err)
	}
	want(1, 1, 0)
	third := make(chan error, 1)
	qctx, cancel := context.WithCancel(ctx)
	go func() { _, err := thr.Admit(qctx, get("http://a.test/3")); third <- err }()
	want(1, 1, 1)
	cancel()
	if err := <-third; err == nil {
		t.Fatal("the third request got a turn with both slots held")
	}
	want(1, 1, 0)
	second.Release() // never started
	want(1, 0, 0)
	first.Release()
	want(0, 0, 0)
	used, load := thr.Hosts().Report(10)
	if len(used) != 1 || used[0] != "a.test" || len(load) != 0 {
		t.Errorf("Report: used %v, load %v", used, load)
	}
	if used, _ := thr.Hosts().Report(10); len(used) != 0 || len(thr.Hosts().m) != 0 {
		t.Errorf("idle key kept: used %v, %d keys", used, len(thr.Hosts().m))
	}
}

// TestHostsBounded: Report and Snapshot return at most max keys, busiest first, and Snapshot
// filters by pattern.
func TestHostsBounded(t *testing.T) {
	h := NewHosts()
	for i, k := range []string{"a.test", "b.test", "c.example", "d.test"} {
		for range i + 1 {
			h.waiting(k, "policy")(true)
			h.started(k)
		}
	}
	got, n := h.Snapshot("*.test", 2)
	if n != 3 || len(got) != 2 || got[0].Key != "d.test" || got[0].InFlight != 4 || got[1].Key != "b.test" {
		t.Errorf("Snapshot: %d matched, %+v", n, got)
	}
	if _, load := h.Report(1); len(load) != 1 || load[0].Key != "d.test" {
		t.Errorf("Report: %+v", load)
	}
}
