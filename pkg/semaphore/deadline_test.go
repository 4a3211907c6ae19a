package semaphore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crawlpolite/crawlpolite/internal/redistest"
	"github.com/crawlpolite/crawlpolite/pkg/semaphore"
)

// lateContext has a deadline but says so late: its Done closes, and its Err turns non-nil, only when
// its parent's does, after the deadline it reports. So does any context whose timer fires late on a
// loaded machine, for a moment.
type lateContext struct {
	context.Context
	deadline time.Time
}

func (c lateContext) Deadline() (time.Time, bool) { return c.deadline, true }

// unbatched is a client the semaphore does not know to be of one server.
type unbatched struct{ semaphore.Client }

// TestDeadlineIsTheCallersError: an acquire that fails because its caller's deadline passed (here:
// waiting for the client's one connection, which a BLPOP holds) returns the caller's context error,
// not ErrUnavailable, even when the caller's context does not yet say it is done. It failed the
// conformance suite's stress cases on a loaded machine ("backend unavailable: acquire: context
// deadline exceeded"): a shared pipeline's context, which ends at its callers' latest deadline, ended
// a moment before the caller's own.
func TestDeadlineIsTheCallersError(t *testing.T) {
	srv := redistest.Start(t)
	for _, name := range []string{"alone", "in a shared pipeline"} {
		t.Run(name, func(t *testing.T) {
			rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, PoolSize: 1})
			defer rdb.Close()
			var c semaphore.Client = rdb
			if name == "alone" {
				c = unbatched{rdb} // hides Pipeline and Options: each script is sent alone
			}
			s, err := semaphore.NewRedis(c, semaphore.Options{Prefix: uniquePrefix()})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			held := make(chan struct{})
			go func() {
				defer close(held)
				rdb.BLPop(t.Context(), time.Second, uniquePrefix()) // holds the one connection for a second
			}()
			time.Sleep(50 * time.Millisecond)
			parent, cancel := context.WithTimeout(t.Context(), 400*time.Millisecond)
			defer cancel()
			ctx := lateContext{Context: parent, deadline: time.Now().Add(100 * time.Millisecond)}
			_, err = s.Acquire(ctx, "busy.example", semaphore.Limits{Concurrency: 1})
			errNow := ctx.Err()
			<-held
			if errors.Is(err, semaphore.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Acquire = %v, want the caller's context.DeadlineExceeded", err)
			}
			if errNow == nil {
				t.Fatal("Acquire returned before its caller's context ended")
			}
		})
	}
}

// TestQueuedCallsLeaveStalledPipelines: with the server hung, a call queued behind the pipelines in
// flight fails within about one client timeout, as alone, not after them and then its own pipeline
// (two timeouts): it leaves the queue once they stall. It failed the sidecar's TestRedisHangs bound.
func TestQueuedCallsLeaveStalledPipelines(t *testing.T) {
	srv := redistest.Start(t)
	const timeout = 400 * time.Millisecond
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, ReadTimeout: timeout, WriteTimeout: timeout, MaxRetries: -1})
	defer rdb.Close()
	s, err := semaphore.NewRedis(rdb, semaphore.Options{Prefix: uniquePrefix()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer srv.Resume()
	srv.Pause()
	l := semaphore.Limits{Concurrency: 1}
	done := make(chan error, 2)
	for _, k := range []string{"a.example", "b.example"} { // the two pipelines in flight
		go func() { _, err := s.Acquire(t.Context(), k, l); done <- err }()
	}
	time.Sleep(2 * time.Millisecond)
	start := time.Now()
	_, err = s.Acquire(t.Context(), "c.example", l) // queued behind them, then on its own
	took := time.Since(start)
	if !errors.Is(err, semaphore.ErrUnavailable) {
		t.Fatalf("Acquire on a hung server = %v, want ErrUnavailable", err)
	}
	for range 2 {
		if err := <-done; err == nil {
			t.Error("an acquire on the hung server succeeded")
		}
	}
	if took > timeout*3/2 {
		t.Fatalf("the queued acquire failed after %v, more than one client timeout (%v) and slack", took, timeout)
	}
	t.Logf("queued acquire failed after %v (client timeout %v)", took, timeout)
}
