package semaphore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/crawlpolite/crawlpolite/internal/redistest"
	"github.com/crawlpolite/crawlpolite/pkg/semaphore"
)

// TestMain lets the test binary double as a worker process for the multi-process tests
// (helper_test.go): with SEMAPHORE_HELPER set it runs that helper instead of the tests.
func TestMain(m *testing.M) {
	if mode := os.Getenv("SEMAPHORE_HELPER"); mode != "" {
		os.Exit(runHelper(mode))
	}
	os.Exit(m.Run())
}

// backend is one implementation under the conformance suite.
type backend struct {
	name    string
	client  redis.UniversalClient // nil for the in-process backend
	addrs   []string              // for helper processes
	cluster bool
	server  *redistest.Server // the single server, for restart tests
}

func (b backend) shared() bool { return b.client != nil }

// open returns a semaphore on the backend with a prefix of its own, so tests never see each
// other's keys, and closes it when the test ends.
func (b backend) open(t testing.TB, o semaphore.Options) *semaphore.Semaphore {
	t.Helper()
	if o.Prefix == "" {
		o.Prefix = uniquePrefix()
	}
	var (
		s   *semaphore.Semaphore
		err error
	)
	if b.client == nil {
		s, err = semaphore.NewLocal(o)
	} else {
		s, err = semaphore.NewRedis(b.client, o)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func uniquePrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:])
}

func newClient(addrs []string, cluster bool) redis.UniversalClient {
	if cluster {
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	}
	return redis.NewClient(&redis.Options{Addr: addrs[0]})
}

// backends starts a real redis-server and a real six-node Redis Cluster for this test and returns
// them with the in-process backend.
func backends(t *testing.T) []backend {
	t.Helper()
	single := redistest.Start(t)
	cl := redistest.StartCluster(t)
	out := []backend{{name: "local"}}
	for _, b := range []backend{
		{name: "redis", addrs: []string{single.Addr}, server: single},
		{name: "cluster", addrs: cl.Addrs(), cluster: true},
	} {
		b.client = newClient(b.addrs, b.cluster)
		c := b.client
		t.Cleanup(func() { _ = c.Close() })
		out = append(out, b)
	}
	return out
}

// keysWithPrefix lists the keys under prefix on every master of the backend.
func keysWithPrefix(t *testing.T, b backend, prefix string) []string {
	t.Helper()
	ctx := t.Context()
	var (
		out []string
		mu  sync.Mutex // ForEachMaster scans the masters concurrently
	)
	scan := func(ctx context.Context, c *redis.Client) error {
		keys, err := c.Keys(ctx, prefix+"*").Result()
		mu.Lock()
		out = append(out, keys...)
		mu.Unlock()
		return err
	}
	var err error
	switch c := b.client.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, scan)
	case *redis.Client:
		err = scan(ctx, c)
	default:
		t.Fatalf("no key listing for %T", c)
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mustAcquire(t testing.TB, s *semaphore.Semaphore, key string, l semaphore.Limits) *semaphore.Lease {
	t.Helper()
	lease, err := s.Acquire(t.Context(), key, l)
	if err != nil {
		t.Fatalf("acquire %s: %v", key, err)
	}
	return lease
}

func mustRelease(t testing.TB, l *semaphore.Lease) {
	t.Helper()
	if err := l.Release(t.Context()); err != nil {
		t.Fatalf("release: %v", err)
	}
}

func toString(x any) string { return fmt.Sprint(x) }
