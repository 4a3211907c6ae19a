package throttle

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/crawlpolite/crawlpolite/internal/policy"
	"github.com/crawlpolite/crawlpolite/internal/redistest"
	"github.com/crawlpolite/crawlpolite/pkg/robots"
	"github.com/crawlpolite/crawlpolite/pkg/semaphore"
)

// scriptCounter is a go-redis hook counting round trips (a command alone or a pipeline; not the
// handshake of a new pooled connection) and script calls by the script's SHA-1, inside pipelines too.
type scriptCounter struct {
	trips atomic.Int64
	mu    sync.Mutex
	calls map[string]int
}

func (s *scriptCounter) reset() (trips int64, calls map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	trips, calls = s.trips.Swap(0), s.calls
	s.calls = map[string]int{}
	return trips, calls
}

func (s *scriptCounter) count(cmd redis.Cmder) {
	args := cmd.Args()
	if len(args) < 2 {
		return
	}
	var sha string
	switch strings.ToLower(cmd.Name()) {
	case "evalsha", "evalsha_ro":
		sha = fmt.Sprint(args[1])
	case "eval", "eval_ro":
		sum := sha1.Sum([]byte(fmt.Sprint(args[1])))
		sha = hex.EncodeToString(sum[:])
	default:
		return
	}
	s.mu.Lock()
	s.calls[sha]++
	s.mu.Unlock()
}

func (s *scriptCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (s *scriptCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !handshake(cmd) {
			s.trips.Add(1)
		}
		s.count(cmd)
		return next(ctx, cmd)
	}
}
func (s *scriptCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		hs := true
		for _, c := range cmds {
			hs = hs && handshake(c)
			s.count(c)
		}
		if !hs {
			s.trips.Add(1)
		}
		return next(ctx, cmds)
	}
}

// handshake: a command of a new pooled connection's setup, the pool's business and not a request's.
func handshake(cmd redis.Cmder) bool {
	switch strings.ToLower(cmd.Name()) {
	case "hello", "client", "auth", "select":
		return true
	}
	return false
}

// only is the one script called in calls (its SHA-1), failing otherwise.
func only(t *testing.T, what string, calls map[string]int) string {
	t.Helper()
	if len(calls) != 1 {
		t.Fatalf("%s called scripts %v, want one", what, calls)
	}
	for sha := range calls {
		return sha
	}
	return ""
}

// TestRobotsMissCostsOneTurn (issue 18: "the robots.txt fetch takes a turn ... without a second
// round trip for the request"): on Redis, a request whose host's robots.txt is not cached pays the
// fetch's turn (one acquire, one release) and its own turn (one acquire, one release), no more; on
// a cache hit, only its own. The page request never pays a second acquire for the robots.txt
// lookup it triggered. Counted by script on the go-redis client, pipelines included.
func TestRobotsMissCostsOneTurn(t *testing.T) {
	var robotsHits atomic.Int32
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/robots.txt" {
			robotsHits.Add(1)
			_, _ = io.WriteString(w, "User-agent: *\nAllow: /\nCrawl-delay: 0.05\n")
		}
	}))
	t.Cleanup(origin.Close)

	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = c.Close() })
	sc := &scriptCounter{calls: map[string]int{}}
	c.AddHook(sc)
	sem, err := semaphore.NewRedis(c, semaphore.Options{Prefix: "robots-trips"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sem.Close() })
	pol, err := policy.Parse([]byte("defaults:\n  maxConcurrency: 1\n  minDelay: 0s\n  waitTimeout: 5s\n"))
	if err != nil {
		t.Fatal(err)
	}
	fetcher := &robots.Fetcher{}
	thr, err := New(sem, nil, robots.NewCache(fetcher, robots.CacheOptions{}), pol, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	fetcher.Gate = thr.RobotsGate
	ctx := t.Context()

	// Which script is an acquire and which a release, learnt from the semaphore itself, once the
	// scripts are loaded (no NOSCRIPT retry is counted from there on).
	le, err := sem.Acquire(ctx, "warm", semaphore.Limits{Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := le.Release(ctx); err != nil {
		t.Fatal(err)
	}
	sc.reset()
	le, err = sem.Acquire(ctx, "warm", semaphore.Limits{Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, calls := sc.reset()
	acquire := only(t, "an acquire", calls)
	if err := le.Release(ctx); err != nil {
		t.Fatal(err)
	}
	_, calls = sc.reset()
	release := only(t, "a release", calls)

	page := func() (trips int64, calls map[string]int) {
		t.Helper()
		turn, err := thr.Admit(ctx, get(origin.URL+"/page"))
		if err != nil {
			t.Fatal(err)
		}
		if err := turn.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		turn.Sent()
		turn.Release()
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := thr.WaitReleases(wctx); err != nil {
			t.Fatal(err)
		}
		return sc.reset()
	}
	for _, tc := range []struct {
		name                    string
		acquires, releases, max int // max: round trips
	}{
		{name: "robots.txt cache miss", acquires: 2, releases: 2, max: 4},
		{name: "robots.txt cache hit", acquires: 1, releases: 1, max: 2},
	} {
		trips, calls := page()
		if calls[acquire] != tc.acquires || calls[release] != tc.releases || len(calls) > 2 {
			t.Errorf("%s: %d acquires, %d releases (scripts %v), want %d and %d", tc.name,
				calls[acquire], calls[release], calls, tc.acquires, tc.releases)
		}
		if trips > int64(tc.max) {
			t.Errorf("%s: %d Redis round trips, want at most %d", tc.name, trips, tc.max)
		}
		t.Logf("%s: %d round trips, scripts %v", tc.name, trips, calls)
	}
	if n := robotsHits.Load(); n != 1 {
		t.Errorf("robots.txt fetched %d times, want 1", n)
	}
}
