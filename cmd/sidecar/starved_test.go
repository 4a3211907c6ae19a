package main_test

import (
	"context"
	"math/rand/v2"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/crawlpolite/crawlpolite/internal/redistest"
)

// starve stops and resumes p at random until ctx ends (stopped 10-60 ms, then running 20-80 ms):
// a sidecar starved of CPU, as a pod at its CPU limit under CFS throttling is, lets its requests go
// late after their turns' starts.
func starve(ctx context.Context, s *sidecar, seed uint64) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := rand.New(rand.NewPCG(seed, 18))
		p := s.cmd.Process
		defer func() { _ = p.Signal(syscall.SIGCONT) }()
		for ctx.Err() == nil {
			time.Sleep(time.Duration(20+r.IntN(60)) * time.Millisecond)
			_ = p.Signal(syscall.SIGSTOP)
			time.Sleep(time.Duration(10+r.IntN(50)) * time.Millisecond)
			_ = p.Signal(syscall.SIGCONT)
		}
	}()
	return &wg
}

// TestStarvedSidecar: sidecars stopped and resumed at random while they crawl one host (limit 1,
// delay 100 ms) still show the site starts at least the delay apart (within 5 ms): a request let go
// late moves the host's next start to a delay after its actual start. With Redis, two sidecars share
// the host and one of them is starved (its late start followed by the other's timely one is what
// shortened gaps); standalone, the one sidecar is.
func TestStarvedSidecar(t *testing.T) {
	const (
		delay     = 100 * time.Millisecond
		tolerance = 5 * time.Millisecond
		run       = 6 * time.Second
	)
	for _, tc := range []struct {
		name  string
		redis bool
	}{{"redis", true}, {"standalone", false}} {
		t.Run(tc.name, func(t *testing.T) {
			o := newSite(t, "", 0, 2*time.Millisecond)
			args := []string{"--policy-file=" + writeSitePolicy(t, delay)}
			n := 1
			if tc.redis {
				rs := redistest.Start(t)
				args = append(args, "--redis=redis://"+rs.Addr)
				n = 2
			}
			var cars []*sidecar
			var clients []*http.Client
			for range n {
				s := startSidecar(t, nil, args...)
				cars, clients = append(cars, s), append(clients, s.client(t, false))
			}
			for _, c := range clients { // robots.txt fetched and each connection open before the measure
				if resp, err := c.Get(o.URL + "/warm"); err == nil {
					resp.Body.Close()
				}
			}
			o.reset()
			ctx, cancel := context.WithTimeout(t.Context(), run)
			defer cancel()
			starving := starve(ctx, cars[0], 1)
			var wg sync.WaitGroup
			for i, c := range clients {
				wg.Add(1)
				go func() { defer wg.Done(); crawl(ctx, c, o.URL, string(rune('a'+i)), 3) }()
			}
			wg.Wait()
			starving.Wait()
			arrivals, maxSeen := o.seen()
			short, smallest := shortGaps(arrivals, func(arrival) time.Duration { return delay - tolerance })
			if maxSeen > 1 {
				t.Errorf("site saw %d requests in flight, limit 1", maxSeen)
			}
			if len(arrivals) < int(run/delay)/3 {
				t.Errorf("only %d requests in %v: the crawl hardly ran", len(arrivals), run)
			}
			if len(short) > 0 {
				t.Errorf("%d of %d gaps below %v (delay %v less %v): %v", len(short), len(arrivals)-1, delay-tolerance, delay, tolerance, short)
			}
			t.Logf("%d requests (%d timed by the kernel), smallest gap %v", len(arrivals), o.kernelTimed(), smallest.Round(100*time.Microsecond))
		})
	}
}
