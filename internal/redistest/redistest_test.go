package redistest_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crawlpolite/crawlpolite/internal/redistest"
)

func TestStartGivesWorkingServer(t *testing.T) {
	s := redistest.Start(t)
	ctx := t.Context()
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer c.Close()
	if err := c.Set(ctx, "redistest:k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(ctx, "redistest:k").Result(); err != nil || v != "v" {
		t.Fatalf("get = %q, %v", v, err)
	}
	if cfg, err := c.ConfigGet(ctx, "save").Result(); err != nil || cfg["save"] != "" {
		t.Fatalf("persistence should be off: %v %v", cfg, err)
	}
	s.Stop()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("server still answers after Stop")
	}
}

// TestClusterRoutesKeysToOwningMaster writes keys through a cluster client and checks, by asking
// each node directly, that every key lives on the master that owns its slot and nowhere else.
func TestClusterRoutesKeysToOwningMaster(t *testing.T) {
	cl := redistest.StartCluster(t)
	ctx := t.Context()
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs()})
	defer c.Close()

	masters := 0
	for _, n := range cl.Nodes {
		if info, _ := n.Do("INFO", "replication"); strings.Contains(info, "role:master") {
			masters++
		}
	}
	if masters != 3 {
		t.Fatalf("masters = %d, want 3", masters)
	}
	seen := map[string]bool{}
	for i := range 30 {
		key := fmt.Sprintf("redistest:{h%d}", i)
		if err := c.Set(ctx, key, "v", 0).Err(); err != nil {
			t.Fatalf("set %s: %v", key, err)
		}
		slot, err := c.ClusterKeySlot(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		owner := ""
		for _, n := range cl.Nodes {
			info, _ := n.Do("INFO", "replication")
			if !strings.Contains(info, "role:master") {
				continue
			}
			k, err := n.Do("CLUSTER", "COUNTKEYSINSLOT", fmt.Sprint(slot))
			if err != nil {
				t.Fatal(err)
			}
			if k == ":1" {
				if owner != "" {
					t.Fatalf("key %s on two masters", key)
				}
				owner = n.Addr
				if v, err := n.Do("GET", key); err != nil || v != "v" {
					t.Fatalf("node %s owns slot %d but GET %s = %q, %v", n.Addr, slot, key, v, err)
				}
			}
		}
		if owner == "" {
			t.Fatalf("key %s (slot %d) found on no master", key, slot)
		}
		seen[owner] = true
	}
	if len(seen) != 3 {
		t.Fatalf("30 keys landed on %d masters, want all 3", len(seen))
	}
}

func TestSentinelFailsOver(t *testing.T) {
	st := redistest.StartSentinel(t)
	old := st.Current()
	if old != st.Master.Addr {
		t.Fatalf("sentinels name %q, want %s", old, st.Master.Addr)
	}
	st.Master.Kill()
	addr, took, err := st.WaitFailover(old, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("promoted %s after %v", addr, took)
}

func TestClusterPromotesReplica(t *testing.T) {
	cl := redistest.StartCluster(t)
	m := cl.MasterFor("{k}")
	if m == nil || m.Role() != "master" {
		t.Fatalf("master for {k}: %v", m)
	}
	m.Kill()
	n, took, err := cl.WaitMaster("{k}", m, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("promoted %s after %v", n.Addr, took)
}

// TestProxyBlackholes: through the proxy a client is served; blackholed, its call times out with
// the socket still open (no error but the timeout); healed, a new call is served again.
func TestProxyBlackholes(t *testing.T) {
	s := redistest.Start(t)
	p := redistest.StartProxy(t, s.Addr)
	ctx := t.Context()
	c := redis.NewClient(&redis.Options{Addr: p.Addr, ReadTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	p.Blackhole()
	began := time.Now()
	err := c.Ping(ctx).Err()
	if err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("blackholed: %v after %v, want a read timeout", err, time.Since(began))
	}
	if _, err := s.Do("PING"); err != nil {
		t.Fatalf("the server itself must still answer: %v", err)
	}
	p.Heal()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("healed: %v", err)
	}
}
