package main

import (
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestMemoryLimit(t *testing.T) {
	for in, want := range map[string]int64{"": 0, "0": 0, "268435456": 256 << 20, "256Mi": 256 << 20, "1G": 1e9, "64Ki": 64 << 10} {
		o := Options{MemoryLimit: in}
		if got, err := o.memoryLimit(); err != nil || got != want {
			t.Errorf("memoryLimit(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"abc", "-1", "1.5Gi", "99999999999Ti"} {
		o := Options{MemoryLimit: in}
		if _, err := o.memoryLimit(); err == nil {
			t.Errorf("memoryLimit(%q): want an error", in)
		}
	}
}

func TestRedisTarget(t *testing.T) {
	for in, want := range map[string]string{
		"":                                 "in-process",
		"redis://:pw@r:6379/0":             "redis://r:6379/0",
		"redis+cluster://u:p@a:1?addr=b:2": "redis+cluster://a:1",
		"rediss://r:6379":                  "rediss://r:6379",
	} {
		if got := redisTarget(in); got != want {
			t.Errorf("redisTarget(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestClusterSeedList: a comma-separated list of cluster nodes is every seed node (it was one
// host named "a:1,b:2", a dial error).
func TestClusterSeedList(t *testing.T) {
	rdb, err := newRedis("redis+cluster://127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003?read_timeout=1s", "")
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	cc, ok := rdb.(*redisConn).UniversalClient.(*redis.ClusterClient)
	if !ok {
		t.Fatalf("not a cluster client: %T", rdb.(*redisConn).UniversalClient)
	}
	if got := cc.Options().Addrs; len(got) != 3 || got[0] != "127.0.0.1:7001" || got[2] != "127.0.0.1:7003" {
		t.Errorf("seed nodes %q", got)
	}
}
