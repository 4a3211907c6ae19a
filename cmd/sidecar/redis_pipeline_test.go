package main

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/crawlpolite/crawlpolite/internal/redistest"
	"github.com/crawlpolite/crawlpolite/pkg/semaphore"
)

// pipelines counts the pipelines of scripts a client sends (go-redis sends its connection set-up
// as a pipeline too).
type pipelines struct{ n atomic.Int64 }

func (p *pipelines) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (p *pipelines) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (p *pipelines) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 1 && cmds[0].Name() == "evalsha" {
			p.n.Add(1)
		}
		return next(ctx, cmds)
	}
}

// TestOneServerSharesPipelines: the sidecar's client of one server lets pkg/semaphore send the
// scripts of concurrent requests in shared pipelines, and keeps its health view. (Before oneServer,
// the wrapper hid the client's kind and every script went alone.)
func TestOneServerSharesPipelines(t *testing.T) {
	srv := redistest.Start(t)
	rdb, err := newRedis("redis://"+srv.Addr, "")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rdb.Close() }()
	if healthOf(rdb) == nil {
		t.Fatal("no health view")
	}
	one, ok := rdb.(oneServer)
	if !ok {
		t.Fatalf("client of one server is %T", rdb)
	}
	p := &pipelines{}
	one.c.AddHook(p)
	sem, err := semaphore.NewRedis(rdb, semaphore.Options{Prefix: "pipetest"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sem.Close() }()
	ctx := t.Context()
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				l, err := sem.Acquire(ctx, "host"+string(rune('a'+w))+".example", semaphore.Limits{Concurrency: 1})
				if err != nil {
					t.Error(err)
					return
				}
				if err := l.Release(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if p.n.Load() == 0 {
		t.Error("800 concurrent pairs sent no pipeline: the semaphore did not recognise a single-server client")
	}
}

// TestClusterNotOneServer: a cluster client never shares pipelines across nodes.
func TestClusterNotOneServer(t *testing.T) {
	rdb, err := newRedis("redis+cluster://127.0.0.1:7001,127.0.0.1:7002", "")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rdb.Close() }()
	if _, ok := rdb.(interface{ Options() *redis.Options }); ok {
		t.Errorf("cluster client %T has Options: the semaphore would pipeline across nodes", rdb)
	}
	if healthOf(rdb) == nil {
		t.Error("no health view")
	}
}
