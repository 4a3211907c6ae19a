package semaphore_test

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/crawlpolite/crawlpolite/internal/redistest"
	"github.com/crawlpolite/crawlpolite/pkg/semaphore"
)

// TestAcquiresSharePipelines: on one server, acquires made at once go out in fewer round trips than
// acquires (shared pipelines), each gets its own grant, and they still do after the server forgot
// its scripts (SCRIPT FLUSH, as after a restart).
func TestAcquiresSharePipelines(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	for _, flushed := range []bool{false, true} {
		t.Run("script cache flushed "+strconv.FormatBool(flushed), func(t *testing.T) {
			c := redis.NewClient(&redis.Options{Addr: srv.Addr, PoolSize: 64})
			defer c.Close()
			s, err := semaphore.NewRedis(c, semaphore.Options{Prefix: uniquePrefix()})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			mustRelease(t, mustAcquire(t, s, "warm", semaphore.Limits{Concurrency: 1})) // the subscription, a connection
			if flushed {
				if err := c.ScriptFlush(ctx).Err(); err != nil {
					t.Fatal(err)
				}
			}
			const n = 64
			rt := &roundTrips{}
			c.AddHook(rt)
			leases := make([]*semaphore.Lease, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range leases {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					// Eight keys of limit 8: every acquire is granted at once, some beside other holders.
					le, err := s.Acquire(ctx, "acq"+strconv.Itoa(i%8), semaphore.Limits{Concurrency: 8})
					if err != nil {
						t.Error(err)
						return
					}
					leases[i] = le
				}()
			}
			close(start)
			wg.Wait()
			trips := rt.n.Load()
			tokens := map[string]map[int64]bool{}
			for _, le := range leases {
				if le == nil {
					t.FailNow()
				}
				if tokens[le.Key()] == nil {
					tokens[le.Key()] = map[int64]bool{}
				}
				if tokens[le.Key()][le.Token()] {
					t.Errorf("%s: token %d granted twice", le.Key(), le.Token())
				}
				tokens[le.Key()][le.Token()] = true
			}
			for k := range tokens {
				st, err := s.State(ctx, k)
				if err != nil {
					t.Fatal(err)
				}
				if st.Holders != n/8 {
					t.Errorf("%s: %d holders, want %d", k, st.Holders, n/8)
				}
			}
			for _, le := range leases {
				mustRelease(t, le)
			}
			t.Logf("%d acquires in %d round trips", n, trips)
			if !flushed && trips >= n {
				t.Errorf("%d acquires took %d round trips; concurrent acquires should share pipelines", n, trips)
			}
		})
	}
}
