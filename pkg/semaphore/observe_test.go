package semaphore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crawlpolite/crawlpolite/pkg/semaphore"
)

// TestObserve reads each phase of a key's life from a real redis-server and a real Redis Cluster:
// a lease started (in flight), a lease granted behind the delay gate (starting), a queued request
// (waiting), a backoff, and a key that was never used; many keys in one call, across slots.
func TestObserve(t *testing.T) {
	ctx := t.Context()
	for _, b := range backends(t) {
		if !b.shared() {
			continue
		}
		t.Run(b.name, func(t *testing.T) {
			prefix := uniquePrefix()
			s := b.open(t, semaphore.Options{Prefix: prefix})
			obs := semaphore.NewObserver(b.client.(semaphore.ObserveClient), semaphore.Options{Prefix: prefix})
			l := semaphore.Limits{Concurrency: 2, Delay: 5 * time.Second}
			first := mustAcquire(t, s, "busy.test", l)  // starts now
			second := mustAcquire(t, s, "busy.test", l) // starts in 5 s
			defer mustRelease(t, first)
			defer mustRelease(t, second)
			qctx, cancel := context.WithCancel(ctx)
			defer cancel()
			queued := make(chan error, 1)
			go func() { _, err := s.Acquire(qctx, "busy.test", l); queued <- err }()
			if _, err := s.Backoff(ctx, "slow.test", 30*time.Second); err != nil {
				t.Fatal(err)
			}
			keys := []string{"busy.test", "never.test", "slow.test"}
			for i := range 300 { // spread over many slots, more than one batch
				keys = append(keys, fmt.Sprintf("h%d.test", i))
			}
			var got semaphore.Observed
			deadline := time.Now().Add(5 * time.Second)
			for {
				var err error
				if got, err = obs.Observe(ctx, keys); err != nil {
					t.Fatal(err)
				}
				if got.Hosts[0].Waiting == 1 || time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			busy := got.Hosts[0]
			if busy.Key != "busy.test" || busy.InFlight != 1 || busy.Starting != 1 || busy.Waiting != 1 || busy.Limit != 2 ||
				busy.Delay != 5*time.Second || busy.NextStart < 9*time.Second || busy.NextStart > 10*time.Second {
				t.Errorf("busy.test: %+v; want 1 in flight, 1 starting, 1 waiting, limit 2, delay 5s, next start in ~10s", busy)
			}
			if never := got.Hosts[1]; never != (semaphore.HostState{Key: "never.test"}) {
				t.Errorf("never.test: %+v, want zeros", never)
			}
			if slow := got.Hosts[2]; slow.Backoff < 29*time.Second || slow.BackoffLevel != 1 || slow.InFlight != 0 {
				t.Errorf("slow.test: %+v, want a 30s backoff at level 1", slow)
			}
			if d := time.Since(got.At); d < -time.Minute || d > time.Minute {
				t.Errorf("At %v is not the server clock of now", got.At)
			}
			before := len(keysWithPrefix(t, b, prefix))
			if _, err := obs.Observe(ctx, keys); err != nil {
				t.Fatal(err)
			}
			if after := len(keysWithPrefix(t, b, prefix)); after != before {
				t.Errorf("Observe changed the key count: %d -> %d", before, after)
			}
			cancel()
			if err := <-queued; err == nil {
				t.Error("the queued request was granted while both slots were held")
			}
		})
	}
}

// TestObserveReloadsScript: after SCRIPT FLUSH (a restart or failover), Observe loads its script
// again instead of failing.
func TestObserveReloadsScript(t *testing.T) {
	for _, b := range backends(t) {
		if !b.shared() || b.cluster {
			continue
		}
		obs := semaphore.NewObserver(b.client.(semaphore.ObserveClient), semaphore.Options{Prefix: uniquePrefix()})
		if _, err := obs.Observe(t.Context(), []string{"a.test"}); err != nil {
			t.Fatal(err)
		}
		if err := b.client.ScriptFlush(t.Context()).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := obs.Observe(t.Context(), []string{"a.test"}); err != nil {
			t.Fatalf("after SCRIPT FLUSH: %v", err)
		}
	}
}

// TestSlot agrees with the server's CLUSTER KEYSLOT for the hash tag of a semaphore key.
func TestSlot(t *testing.T) {
	for _, b := range backends(t) {
		if !b.cluster {
			continue
		}
		for _, k := range []string{"example.com", "a.test:8443", "[::1]:8080", "xn--bcher-kva.example", ""} {
			want, err := b.client.(*redis.ClusterClient).ClusterKeySlot(t.Context(), "p:{"+k+"}:h").Result()
			if err != nil {
				t.Fatal(err)
			}
			if k == "" { // an empty tag hashes the whole name
				continue
			}
			if got := semaphore.Slot(k); int64(got) != want {
				t.Errorf("Slot(%q) = %d, server says %d", k, got, want)
			}
		}
	}
}

// TestActive: reports from two processes are listed and summed, a process's new report replaces
// its old one, an empty report clears it, and the registry is trimmed to Max keys.
func TestActive(t *testing.T) {
	ctx := t.Context()
	for _, b := range backends(t) {
		if !b.shared() {
			continue
		}
		t.Run(b.name, func(t *testing.T) {
			a := semaphore.NewActive(b.client, semaphore.ActiveOptions{Prefix: uniquePrefix(), Max: 3})
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(a.Publish(ctx, "p1", []string{"a.test", "b.test"}, []semaphore.Load{
				{Key: "a.test", InFlight: 2, Waiting: 3, DelaySource: "robots", Robots: "ok"},
				{Key: "b.test", Starting: 1, DelaySource: "policy", Robots: "unreachable"}}))
			must(a.Publish(ctx, "p2", []string{"a.test", "c.test"}, []semaphore.Load{{Key: "a.test", InFlight: 1, Starting: 1}}))
			loads, procs, err := a.Loads(ctx, 0)
			must(err)
			if got := loads["a.test"]; procs != 2 || got.InFlight != 3 || got.Starting != 1 || got.Waiting != 3 || got.DelaySource != "robots" || got.Robots != "ok" {
				t.Errorf("a.test summed over %d processes: %+v", procs, got)
			}
			if got := loads["b.test"]; got.Starting != 1 || got.Robots != "unreachable" {
				t.Errorf("b.test: %+v", got)
			}
			must(a.Publish(ctx, "p1", nil, nil)) // p1 is idle now
			loads, _, err = a.Loads(ctx, 0)
			must(err)
			if _, ok := loads["b.test"]; ok || loads["a.test"].InFlight != 1 {
				t.Errorf("after p1's empty report: %+v", loads)
			}
			time.Sleep(5 * time.Millisecond)
			must(a.Publish(ctx, "p2", []string{"d.test"}, nil))
			keys, err := a.Keys(ctx, 10)
			must(err)
			if len(keys) != 3 || keys[0].Key != "d.test" {
				t.Errorf("keys %+v: want 3, d.test first", keys)
			}
			if n, err := a.Count(ctx); err != nil || n != 3 {
				t.Errorf("Count = %d, %v", n, err)
			}
		})
	}
}
