package main_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crawlpolite/crawlpolite/internal/redistest"
)

const robotsPrivate = "User-agent: *\nDisallow: /private\n"

// probeBound is the most a request may wait on Redis while its breaker is open: it may be the one
// caller a second that probes the node, and that probe is one failing call (two attempts of the
// 500 ms timeout, and the pool's wait), never the three calls a robots.txt miss makes (load, claim,
// save). fastBound is an answer that waited on no Redis call at all (the origin answers at once).
const (
	probeBound = 1800 * time.Millisecond
	fastBound  = 300 * time.Millisecond
)

// TestRobotsShareRedisHealth is issue 11's "the robots.txt cache shares the throttle's view of Redis
// health". One sidecar with --on-redis-down=local and robots.txt enforced; Redis is paused
// (SIGSTOP). Once the breaker is open, requests to hosts whose robots.txt is in no cache are
// answered from a robots.txt fetched under a per-pod turn, without waiting on Redis: every answer is
// within probeBound, and all but about one a second (the breaker's probes) within fastBound; robots
// is still enforced (/private refused 403). After the resume, a new host's robots.txt is stored in
// Redis again.
func TestRobotsShareRedisHealth(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test: about 10 s")
	}
	rs := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(pol, []byte("defaults:\n  maxConcurrency: 2\n  minDelay: 0s\n  robots: enforce\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startSidecar(t, nil, "--redis=redis://"+rs.Addr, "--policy-file="+pol, "--on-redis-down=local")
	c := s.client(t, false)
	get := func(o *origin, path string) (int, time.Duration) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), "GET", o.URL+path, nil)
		req.Header.Set("User-Agent", "testbot/1.0")
		began := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, time.Since(began)
	}
	stored := func(o *origin) bool {
		n, err := rdb.Exists(context.Background(), "crawlpolite:robots:{"+o.URL+"}").Result()
		return err == nil && n == 1
	}

	before := newOrigin(t, robotsPrivate, 0, false)
	if code, _ := get(before, "/a"); code != 200 || !stored(before) {
		t.Fatalf("with Redis up: %d, robots.txt stored %v; want 200 and stored", code, stored(before))
	}

	rs.Pause()
	// Open the breaker: the first requests find Redis hung, and pay for it.
	warm := newOrigin(t, robotsPrivate, 0, false)
	code, took := get(warm, "/a")
	t.Logf("first request after the pause: %d in %v", code, took.Round(time.Millisecond))

	// Batches of misses at once: the breaker lets one caller a second through to probe, so at most
	// one answer of a batch may wait on Redis (two if the batch straddles the breaker's reopening).
	const batches, hosts = 3, 8
	for b := range batches {
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			slow []time.Duration
			most time.Duration
		)
		for i := range hosts {
			o := newOrigin(t, robotsPrivate, 0, false)
			wg.Add(1)
			go func() {
				defer wg.Done()
				path, want := "/a", http.StatusOK
				if i%2 == 1 {
					path, want = "/private/x", http.StatusForbidden
				}
				code, took := get(o, path)
				if code != want {
					t.Errorf("batch %d host %d %s while Redis hangs: %d, want %d", b, i, path, code, want)
				}
				if _, _, hits, _ := o.snapshot(); hits["/robots.txt"] != 1 {
					t.Errorf("batch %d host %d: robots.txt fetched %d times, want once", b, i, hits["/robots.txt"])
				}
				mu.Lock()
				defer mu.Unlock()
				most = max(most, took)
				if took > fastBound {
					slow = append(slow, took.Round(time.Millisecond))
				}
			}()
		}
		wg.Wait()
		t.Logf("batch %d: %d new hosts at once while Redis hangs; slowest %v; slower than %v: %v",
			b, hosts, most.Round(time.Millisecond), fastBound, slow)
		if most > probeBound {
			t.Errorf("batch %d: a robots.txt miss waited %v with the breaker open, more than one probe (%v)", b, most, probeBound)
		}
		if len(slow) > 2 {
			t.Errorf("batch %d: %d of %d misses waited on Redis (slower than %v), the breaker lets one a second probe",
				b, len(slow), hosts, fastBound)
		}
		time.Sleep(700 * time.Millisecond)
	}

	rs.Resume()
	// The next probe (within a second) closes the breaker; then a miss goes through Redis again.
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; ; i++ {
		o := newOrigin(t, robotsPrivate, 0, false)
		code, _ := get(o, fmt.Sprintf("/after/%d", i))
		if code == 200 && stored(o) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5 s after the resume a new host's robots.txt is still not stored in Redis (last answer %d)", code)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
