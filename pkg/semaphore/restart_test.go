package semaphore_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crawlpolite/crawlpolite/pkg/semaphore"
)

// TestRedisRestart restarts the redis-server (no persistence: it comes back empty) under load.
// The outage lasts 2s: go-redis retries the (idempotent) scripts for several hundred milliseconds,
// so shorter outages are rightly invisible to callers.
// During the outage callers get errors wrapping ErrUnavailable and nothing else; afterwards they
// recover by themselves, and once they stop, nothing is left held, queued or stored.
func TestRedisRestart(t *testing.T) {
	var b backend
	for _, x := range backends(t) {
		if x.server != nil {
			b = x
		}
	}
	prefix := uniquePrefix()
	s := b.open(t, semaphore.Options{Prefix: prefix, Heartbeat: 100 * time.Millisecond, Lease: time.Second})
	l := semaphore.Limits{Concurrency: 2, Delay: 5 * time.Millisecond}
	ctx, cancel := context.WithCancel(t.Context())
	var (
		restarted       atomic.Bool
		okBefore, okAft atomic.Int64
		mu              sync.Mutex
		failures        []error
		wg              sync.WaitGroup
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				actx, acancel := context.WithTimeout(ctx, 2*time.Second)
				lease, err := s.Acquire(actx, "restart", l)
				acancel()
				if err == nil {
					_ = lease.Wait(ctx)
					time.Sleep(time.Millisecond)
					err = lease.Release(t.Context())
				}
				switch {
				case err == nil && restarted.Load():
					okAft.Add(1)
				case err == nil:
					okBefore.Add(1)
				case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
				default:
					mu.Lock()
					failures = append(failures, err)
					mu.Unlock()
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	b.server.Restart(t, 2*time.Second)
	restarted.Store(true)
	time.Sleep(1500 * time.Millisecond)
	cancel()
	wg.Wait()

	if okBefore.Load() == 0 || okAft.Load() == 0 {
		t.Fatalf("turns before restart %d, after %d: want both", okBefore.Load(), okAft.Load())
	}
	if len(failures) == 0 {
		t.Fatal("no caller noticed a 2s outage")
	}
	for _, err := range failures {
		if !errors.Is(err, semaphore.ErrUnavailable) {
			t.Fatalf("outage error %v does not wrap ErrUnavailable", err)
		}
	}
	t.Logf("turns before %d, after %d, outage errors %d (first: %v)", okBefore.Load(), okAft.Load(), len(failures), failures[0])
	// Callers that gave up mid-acquire leave their queue in the background; Close waits for them.
	// The state is then read through a second semaphore on the same server.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := b.open(t, semaphore.Options{Prefix: prefix}).State(t.Context(), "restart")
	if err != nil {
		t.Fatal(err)
	}
	if st.Holders != 0 || st.Waiters != 0 {
		t.Fatalf("left behind after every caller stopped: %+v", st)
	}
	deadline := time.Now().Add(3 * time.Second)
	for len(keysWithPrefix(t, b, prefix)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("keys %v never expired", keysWithPrefix(t, b, prefix))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
