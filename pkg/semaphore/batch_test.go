package semaphore_test

import (
	"strconv"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/crawlpolite/crawlpolite/internal/redistest"
	"github.com/crawlpolite/crawlpolite/pkg/semaphore"
)

// TestReleasesSharePipelines: on one server, releases made at once go out in fewer round trips than
// releases (shared pipelines), every one of them frees its slot, and they still do after the server
// forgot its scripts (SCRIPT FLUSH, as after a restart).
func TestReleasesSharePipelines(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	for _, flushed := range []bool{false, true} {
		t.Run("script cache flushed "+strconv.FormatBool(flushed), func(t *testing.T) {
			c := redis.NewClient(&redis.Options{Addr: srv.Addr, PoolSize: 64})
			defer c.Close()
			s, err := semaphore.NewRedis(c, semaphore.Options{Prefix: uniquePrefix()})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			const n = 64
			l := semaphore.Limits{Concurrency: 1}
			leases := make([]*semaphore.Lease, n)
			for i := range leases {
				leases[i] = mustAcquire(t, s, "batch"+strconv.Itoa(i%8)+"."+strconv.Itoa(i), l)
			}
			if flushed {
				if err := c.ScriptFlush(ctx).Err(); err != nil {
					t.Fatal(err)
				}
			}
			rt := &roundTrips{}
			c.AddHook(rt)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for _, le := range leases {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					if err := le.Release(ctx); err != nil {
						t.Error(err)
					}
				}()
			}
			close(start)
			wg.Wait()
			trips := rt.n.Load()
			for _, le := range leases {
				st, err := s.State(ctx, le.Key())
				if err != nil {
					t.Fatal(err)
				}
				if st.Holders != 0 {
					t.Errorf("%s: %d holders after its release", le.Key(), st.Holders)
				}
			}
			t.Logf("%d releases in %d round trips", n, trips)
			if !flushed && trips >= n {
				t.Errorf("%d releases took %d round trips; concurrent releases should share pipelines", n, trips)
			}
		})
	}
}
