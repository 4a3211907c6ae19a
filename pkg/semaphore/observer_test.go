package semaphore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/crawlpolite/crawlpolite/pkg/semaphore"
)

// event is what a worker observes of one turn, on its own clock (all processes of a test run on
// one machine and read the same wall clock, which is also Redis's): when Acquire returned, when it
// actually started (after Lease.Wait), and when it was about to release. Sched is the backend's
// scheduled start, used only to show that no worker starts before it.
type event struct {
	Key   string
	Limit int
	Delay time.Duration
	Proc  int
	Acq   int64 // unix ns
	Start int64
	End   int64
	Sched int64
	Token int64
}

type keySpec struct {
	Name   string
	Limits semaphore.Limits
}

// hammer runs workers goroutines that take turns until ctx ends, worker i on keys[i % len(keys)], holding each turn
// for 0-3 ms, and emits one event per turn.
func hammer(ctx context.Context, s *semaphore.Semaphore, keys []keySpec, workers, proc int, emit func(event)) error {
	errs := make(chan error, workers)
	for w := range workers {
		k := keys[w%len(keys)]
		go func() {
			for ctx.Err() == nil {
				l, err := s.Acquire(ctx, k.Name, k.Limits)
				if err != nil {
					if ctx.Err() != nil {
						err = nil
					}
					errs <- err
					return
				}
				acq := time.Now().UnixNano()
				if err := l.Wait(ctx); err != nil {
					_ = l.Release(context.Background())
					errs <- nil
					return
				}
				ev := event{Key: k.Name, Limit: k.Limits.Concurrency, Delay: k.Limits.Delay, Proc: proc,
					Acq: acq, Start: time.Now().UnixNano(), Sched: l.Scheduled().UnixNano(), Token: l.Token()}
				time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
				ev.End = time.Now().UnixNano()
				if err := l.Release(context.Background()); err != nil {
					errs <- err
					return
				}
				emit(ev)
			}
			errs <- nil
		}()
	}
	var first error
	for range workers {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// checkEvents is the independent observer's verdict. Per key:
//   - concurrency: each worker's interval [Acq, End] lies inside the backend's hold (the grant was
//     decided before Acquire returned, the release runs after End), so at no instant may more
//     intervals overlap than the smallest limit among them;
//   - start gate: no worker started before its scheduled start, and consecutive scheduled starts are
//     at least the larger of the two delays apart. An observed gap between actual starts can only
//     be shorter than the delay by how late the earlier worker itself started.
func checkEvents(t *testing.T, evs []event) {
	t.Helper()
	if len(evs) == 0 {
		t.Fatal("observer saw no turns")
	}
	for _, v := range violations(evs) {
		t.Error(v)
	}
}

func violations(evs []event) []string {
	var out []string
	byKey := map[string][]event{}
	for _, e := range evs {
		byKey[e.Key] = append(byKey[e.Key], e)
	}
	for key, es := range byKey {
		out = append(out, overlap(key, es)...)
		sort.Slice(es, func(i, j int) bool { return es[i].Sched < es[j].Sched })
		for i, e := range es {
			if e.Start < e.Sched {
				out = append(out, fmt.Sprintf("%s: token %d started %v before its scheduled start", key, e.Token, time.Duration(e.Sched-e.Start)))
			}
			if i == 0 {
				continue
			}
			p := es[i-1]
			want := max(p.Delay, e.Delay)
			if gap := time.Duration(e.Sched - p.Sched); gap < want {
				out = append(out, fmt.Sprintf("%s: scheduled starts of tokens %d and %d %v apart, delay %v", key, p.Token, e.Token, gap, want))
			}
		}
	}
	return out
}

func overlap(key string, es []event) []string {
	type point struct {
		at    int64
		start bool
		i     int
	}
	pts := make([]point, 0, 2*len(es))
	for i, e := range es {
		pts = append(pts, point{e.Acq, true, i}, point{e.End, false, i})
	}
	// At equal instants an end sorts first: a handed-off slot is released no later than it is granted.
	sort.Slice(pts, func(a, b int) bool {
		if pts[a].at != pts[b].at {
			return pts[a].at < pts[b].at
		}
		return !pts[a].start && pts[b].start
	})
	var active []int
	for _, p := range pts {
		if !p.start {
			active = slices.DeleteFunc(active, func(i int) bool { return i == p.i })
			continue
		}
		active = append(active, p.i)
		lim := es[p.i].Limit
		for _, i := range active {
			lim = min(lim, es[i].Limit)
		}
		if len(active) > lim {
			return []string{fmt.Sprintf("%s: %d turns in flight at once, limit %d (tokens %v)", key, len(active), lim, tokens(es, active))}
		}
	}
	return nil
}

func tokens(es []event, idx []int) []int64 {
	out := make([]int64, len(idx))
	for i, j := range idx {
		out[i] = es[j].Token
	}
	return out
}

// TestObserverCatchesViolations shows the observer can fail: it is fed a history that breaks each
// invariant once.
func TestObserverCatchesViolations(t *testing.T) {
	ms := int64(time.Millisecond)
	cases := map[string][]event{
		"over limit": {
			{Key: "k", Limit: 1, Acq: 0, Start: 0, End: 10 * ms, Sched: 0, Token: 1},
			{Key: "k", Limit: 1, Acq: 5 * ms, Start: 5 * ms, End: 20 * ms, Sched: 5 * ms, Token: 2},
		},
		"gap below delay": {
			{Key: "k", Limit: 2, Delay: 10 * time.Millisecond, Acq: 0, Start: 0, End: 1, Sched: 0, Token: 1},
			{Key: "k", Limit: 2, Delay: 10 * time.Millisecond, Acq: 2, Start: 9 * ms, End: 9*ms + 1, Sched: 9 * ms, Token: 2},
		},
		"started early": {
			{Key: "k", Limit: 1, Acq: 0, Start: 0, End: 1, Sched: 5, Token: 1},
		},
	}
	for name, evs := range cases {
		t.Run(name, func(t *testing.T) {
			if len(violations(evs)) == 0 {
				t.Fatal("observer accepted a history that breaks an invariant")
			}
		})
	}
}
