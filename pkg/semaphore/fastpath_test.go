package semaphore_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crawlpolite/crawlpolite/internal/redistest"
	"github.com/crawlpolite/crawlpolite/pkg/semaphore"
)

// TestFastPathsWithHolders covers what the Redis scripts' fast paths decide without reading the
// holders one by one (meta's holder count n and smallest limit lmin), on one redis-server and, for
// the same semantics, in process.
func TestFastPathsWithHolders(t *testing.T) {
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = c.Close() })
	for _, b := range []backend{{name: "local"}, {name: "redis", client: c, addrs: []string{srv.Addr}}} {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			holders := func(s *semaphore.Semaphore, key string) int {
				t.Helper()
				st, err := s.State(ctx, key)
				if err != nil {
					t.Fatal(err)
				}
				return st.Holders
			}
			t.Run("replayed acquire beside another holder", func(t *testing.T) {
				s := b.open(t, semaphore.Options{})
				l := semaphore.Limits{Concurrency: 3}
				if g, err := s.RawAcquire(ctx, "k", "a", l); err != nil || g.Status != 1 {
					t.Fatalf("a: %+v %v", g, err)
				}
				g1, err := s.RawAcquire(ctx, "k", "b", l)
				if err != nil || g1.Status != 1 {
					t.Fatalf("b: %+v %v", g1, err)
				}
				again, err := s.RawAcquire(ctx, "k", "b", l)
				if err != nil || again.Status != 1 || again.Token != g1.Token {
					t.Fatalf("replayed b: %+v %v, want the same grant %d", again, err, g1.Token)
				}
				if n := holders(s, "k"); n != 2 {
					t.Fatalf("holders = %d, want 2", n)
				}
			})
			t.Run("a stricter holder keeps a looser newcomer out", func(t *testing.T) {
				s := b.open(t, semaphore.Options{})
				for rid, l := range map[string]int{"strict": 2, "loose": 4} {
					if g, err := s.RawAcquire(ctx, "k", rid, semaphore.Limits{Concurrency: l}); err != nil || g.Status != 1 {
						t.Fatalf("%s: %+v %v", rid, g, err)
					}
				}
				if g, err := s.RawAcquire(ctx, "k", "third", semaphore.Limits{Concurrency: 4}); err != nil || g.Status != 0 {
					t.Fatalf("third beside a holder of limit 2: %+v %v, want queued", g, err)
				}
				if err := s.RawLeave(ctx, "k", "third", 0); err != nil {
					t.Fatal(err)
				}
				if err := s.RawLeave(ctx, "k", "strict", 0); err != nil {
					t.Fatal(err)
				}
				if g, err := s.RawAcquire(ctx, "k", "fourth", semaphore.Limits{Concurrency: 4}); err != nil || g.Status != 1 {
					t.Fatalf("fourth once the strict holder left: %+v %v, want granted", g, err)
				}
			})
			t.Run("holders leave one by one; the last lets the key go idle", func(t *testing.T) {
				s := b.open(t, semaphore.Options{})
				l := semaphore.Limits{Concurrency: 3}
				var leases []*semaphore.Lease
				for range 3 {
					leases = append(leases, mustAcquire(t, s, "k", l))
				}
				for i, le := range leases {
					mustRelease(t, le)
					if n := holders(s, "k"); n != 2-i {
						t.Fatalf("after %d releases: holders = %d", i+1, n)
					}
				}
				if b.shared() {
					key := s.Prefix() + ":{k}:m"
					if ttl := c.PTTL(ctx, key).Val(); ttl > 2*time.Second {
						t.Errorf("meta expires in %v once idle, want within about a second", ttl)
					}
				}
			})
			t.Run("no delay, no wait after a holder that started", func(t *testing.T) {
				// The script rounds a reported start up to the next ms; a caller without a delay must
				// not wait for that rounding.
				s := b.open(t, semaphore.Options{})
				l := semaphore.Limits{Concurrency: 1}
				for i := range 20 {
					le := mustAcquire(t, s, "k", l)
					le.Started(time.Now())
					mustRelease(t, le)
					g, err := s.RawAcquire(ctx, "k", "probe", l)
					if err != nil || g.Status != 1 {
						t.Fatalf("probe: %+v %v", g, err)
					}
					if g.Wait != 0 {
						t.Fatalf("round %d: wait %v with no delay, want 0", i, g.Wait)
					}
					if err := s.RawLeave(ctx, "k", "probe", g.Token); err != nil {
						t.Fatal(err)
					}
				}
			})
		})
	}
}
