package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crawlpolite/crawlpolite/internal/redistest"
	"github.com/crawlpolite/crawlpolite/pkg/semaphore"
)

const (
	benchActive   = 100_000 // hosts in the active registry
	benchSidecars = 20      // each reports the load of its 256 busiest hosts (MaxLoad)
)

// BenchmarkTopRefresh100k: one `top` refresh with 100k active hosts, 20 sidecars reporting load on
// their 256 busiest hosts each (5120 hosts busy) with real leases on them, on one redis-server and on a Redis
// Cluster. redis-cmds/op is what one refresh costs Redis (INFO commandstats, summed over masters).
// ObserveAll is the design that reads every active host's state each refresh, for comparison.
func BenchmarkTopRefresh100k(b *testing.B) {
	single := redistest.Start(b)
	cl := redistest.StartCluster(b)
	for _, tc := range []struct {
		name string
		c    redis.UniversalClient
	}{
		{"redis", redis.NewClient(&redis.Options{Addr: single.Addr})},
		{"cluster", redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs()})},
	} {
		defer tc.c.Close()
		prefix := "bench" + strconv.FormatInt(time.Now().UnixNano(), 36)
		hosts := fill(b, tc.c, prefix)
		t := newTop(tc.c, prefix)
		b.Run(tc.name+"/top", func(b *testing.B) {
			before := commands(b, tc.c)
			b.ResetTimer()
			for range b.N {
				v, err := t.refresh(b.Context(), topOptions{sortBy: "inflight", limit: 20})
				if err != nil {
					b.Fatal(err)
				}
				if len(v.rows) != 20 || v.active != benchActive || v.rows[0].InFlight != 1 {
					b.Fatalf("view: %d rows, %d active, first %+v", len(v.rows), v.active, v.rows[0])
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(commands(b, tc.c)-before)/float64(b.N), "redis-cmds/op")
		})
		b.Run(tc.name+"/ObserveAll", func(b *testing.B) {
			for range b.N {
				if _, err := t.obs.Observe(b.Context(), hosts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// fill publishes benchActive hosts from benchSidecars sidecars, each with load on the first MaxLoad
// of its hosts, and takes one real lease on each of those.
func fill(b *testing.B, c redis.UniversalClient, prefix string) []string {
	b.Helper()
	ctx := b.Context()
	hosts := make([]string, benchActive)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("host%06d.example", i)
	}
	act := semaphore.NewActive(c, semaphore.ActiveOptions{Prefix: prefix, LoadTTL: time.Hour}) // the reports outlive the benchmark
	per := benchActive / benchSidecars
	for s := range benchSidecars {
		used := hosts[s*per : (s+1)*per]
		var load []semaphore.Load
		for i, h := range used[:act.MaxLoad()] {
			load = append(load, semaphore.Load{Key: h, InFlight: 1, Waiting: i % 3, DelaySource: "policy", Robots: "ok"})
		}
		if err := act.Publish(ctx, fmt.Sprintf("sidecar-%d", s), used, load); err != nil {
			b.Fatal(err)
		}
	}
	sem, err := semaphore.NewRedis(c, semaphore.Options{Prefix: prefix, Lease: 10 * time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sem.Close() })
	var wg sync.WaitGroup
	work := make(chan string)
	for range 32 {
		wg.Go(func() {
			for h := range work {
				if _, err := sem.Acquire(ctx, h, semaphore.Limits{Concurrency: 2}); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for s := range benchSidecars {
		for _, h := range hosts[s*per : s*per+act.MaxLoad()] {
			work <- h
		}
	}
	close(work)
	wg.Wait()
	return hosts
}

// commands is the commands Redis processed so far, summed over the masters.
func commands(b *testing.B, c redis.UniversalClient) int64 {
	b.Helper()
	var (
		mu  sync.Mutex
		sum int64
	)
	count := func(ctx context.Context, n *redis.Client) error {
		info, err := n.Info(ctx, "stats").Result()
		if err != nil {
			return err
		}
		for _, line := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
				x, _ := strconv.ParseInt(v, 10, 64)
				mu.Lock()
				sum += x
				mu.Unlock()
			}
		}
		return nil
	}
	var err error
	switch c := c.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(b.Context(), count)
	case *redis.Client:
		err = count(b.Context(), c)
	}
	if err != nil {
		b.Fatal(err)
	}
	return sum
}
