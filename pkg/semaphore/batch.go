package semaphore

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// single is a client of one Redis server (*redis.Client: one server, or Sentinel's failover client;
// or a wrapper that says so by exposing the client's Options). Only such a client gets its scripts
// batched: on Cluster a pipeline waits for its slowest node, and a shard in trouble must never slow
// the others.
type single interface {
	redis.Scripter
	Pipeline() redis.Pipeliner
	Options() *redis.Options
}

var _ single = (*redis.Client)(nil)

// maxFlushes is how many pipelines may be in flight at once; a call made while they all are waits
// for the first to return and goes out with every call made meanwhile.
const maxFlushes = 2

// stalled is how long the pipelines in flight may go without one of them returning before calls stop
// queueing behind them and go out on their own, as they would without batching: a pipeline that
// waits on a server that hangs or is gone (timeouts, retries, dials) must not hold up every call
// behind it, which then could not even fail in time. Pipelines normally return in well under it.
const stalled = 10 * time.Millisecond

// batcher sends the scripts of concurrent calls (acquires, releases, refreshes) in shared pipelines,
// a group commit: each call is still one script in one round trip, but the client and the server
// read and write many in one system call each. It adds no round trip and, while fewer than
// maxFlushes pipelines are in flight, no wait; a call that finds them all in flight waits at most
// for the first of them to come back.
type batcher struct {
	c       single
	mu      sync.Mutex
	pending []*batched
	flushes int
	moved   time.Time // when a pipeline last started or returned
}

type batched struct {
	ctx    context.Context
	script *redis.Script
	keys   []string
	args   []any
	val    any
	err    error
	done   chan struct{}
}

// run runs script with keys and args in the next pipeline and returns its reply. If ctx ends first,
// a call not yet sent is dropped and returns ctx's error; one already sent returns ctx's error too,
// unless wait is set: then it waits for its reply, as go-redis does for a command it has written
// (its read timeout bounds that), so that what the caller does next reaches the server after it.
func (b *batcher) run(ctx context.Context, wait bool, script *redis.Script, keys []string, args ...any) (any, error) {
	c := &batched{ctx: ctx, script: script, keys: keys, args: args, done: make(chan struct{})}
	b.mu.Lock()
	switch {
	case b.flushes < maxFlushes:
		b.pending = append(b.pending, c)
		b.flushes++
		b.moved = time.Now()
		batch := b.pending
		b.pending = nil
		b.mu.Unlock()
		b.flush(batch)
		b.next()
	case time.Since(b.moved) > stalled:
		b.mu.Unlock()
		return script.Run(ctx, b.c, keys, args...).Result()
	default:
		b.pending = append(b.pending, c)
		b.mu.Unlock()
	}
	if v, sent, err := b.await(ctx, c); sent {
		return v, err
	}
	b.mu.Lock()
	if i := slices.Index(b.pending, c); i >= 0 {
		b.pending = slices.Delete(b.pending, i, i+1)
		b.mu.Unlock()
		return nil, ctx.Err()
	}
	b.mu.Unlock()
	if !wait {
		return nil, ctx.Err()
	}
	<-c.done
	return c.val, c.err
}

// await waits for a queued call's reply until ctx ends (sent false). While it waits, if the pipelines
// in flight stall (a server that hangs, a node gone), a call still queued behind them leaves the queue
// and goes alone, as a call made then would: else it would wait for them to fail and then for its own
// pipeline to fail too, twice the client's timeouts before its caller hears of it.
func (b *batcher) await(ctx context.Context, c *batched) (v any, sent bool, err error) {
	t := time.NewTimer(stalled)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return c.val, true, c.err
		case <-ctx.Done():
			return nil, false, nil
		case <-t.C:
		}
		b.mu.Lock()
		i := slices.Index(b.pending, c)
		if i < 0 || time.Since(b.moved) <= stalled { // sent meanwhile, or the pipelines move
			b.mu.Unlock()
			t.Reset(stalled)
			continue
		}
		b.pending = slices.Delete(b.pending, i, i+1)
		b.mu.Unlock()
		v, err := c.script.Run(ctx, b.c, c.keys, c.args...).Result()
		return v, true, err
	}
}

// next sends what was queued during a flush, in the background so its caller returns now.
func (b *batcher) next() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.moved = time.Now()
	if len(b.pending) == 0 {
		b.flushes--
		return
	}
	batch := b.pending
	b.pending = nil
	go func() {
		b.flush(batch)
		b.next()
	}()
}

// flush sends one pipeline. A script missing from the server's cache (a restart, a failover) is
// run again on its own, which loads it.
func (b *batcher) flush(batch []*batched) {
	ctx, cancel := patient(batch)
	defer cancel()
	if len(batch) == 1 {
		c := batch[0]
		c.val, c.err = c.script.Run(ctx, b.c, c.keys, c.args...).Result()
		close(c.done)
		return
	}
	p := b.c.Pipeline()
	cmds := make([]*redis.Cmd, len(batch))
	for i, c := range batch {
		cmds[i] = c.script.EvalSha(ctx, p, c.keys, c.args...)
	}
	_, _ = p.Exec(ctx)
	for i, c := range batch {
		c.val, c.err = cmds[i].Result()
		if c.err != nil && isNoScript(c.err) {
			c.val, c.err = c.script.Run(ctx, b.c, c.keys, c.args...).Result()
		}
		close(c.done)
	}
}

// patient returns the context a pipeline is sent with: not any one caller's, as one caller giving
// up must not fail the others' calls, but one that ends at the latest of their deadlines (never,
// if one has none), as the call of the most patient caller alone would. go-redis gives up on it
// before it writes the pipeline or between its retries, never while it waits for a reply it is
// owed; the client's timeouts bound that.
func patient(batch []*batched) (context.Context, context.CancelFunc) {
	var last time.Time
	for _, c := range batch {
		d, ok := c.ctx.Deadline()
		if !ok {
			return context.Background(), func() {}
		}
		if d.After(last) {
			last = d
		}
	}
	return context.WithDeadline(context.Background(), last)
}
