package semaphore

import (
	"context"
	"sync"

	"github.com/redis/go-redis/v9"
)

// single is a client of one Redis server (*redis.Client: one server, or Sentinel's failover client).
// Only such a client gets releases batched: on Cluster a pipeline waits for its slowest node, and a
// shard in trouble must never slow the others.
type single interface {
	Pipeline() redis.Pipeliner
	Options() *redis.Options
}

var _ single = (*redis.Client)(nil)

// maxFlushes is how many release pipelines may be in flight at once; a release made while they all
// are waits for the first to return and goes out with every release made meanwhile.
const maxFlushes = 2

// batcher sends the leave scripts of concurrent releases in shared pipelines: each release is still
// one script, in one round trip, but the server reads and answers many in one system call. It adds no
// round trip and, while fewer than maxFlushes pipelines are in flight, no wait.
type batcher struct {
	c       single
	mu      sync.Mutex
	pending []*batched
	flushes int
}

type batched struct {
	keys []string
	args []any
	err  error
	done chan struct{}
}

// leave runs scriptLeave with keys and args in the next pipeline and returns its error, or ctx's
// if ctx ends first (the script may still run: it is idempotent and fenced).
func (b *batcher) leave(ctx context.Context, keys []string, args ...any) error {
	c := &batched{keys: keys, args: args, done: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, c)
	if b.flushes < maxFlushes {
		b.flushes++
		batch := b.pending
		b.pending = nil
		b.mu.Unlock()
		b.flush(batch)
		b.next()
	} else {
		b.mu.Unlock()
	}
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// next sends what was queued during a flush, in the background so its caller returns now.
func (b *batcher) next() {
	b.mu.Lock()
	defer b.mu.Unlock()
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
	// Not any caller's context: one caller giving up must not fail the others' releases. The
	// client's read and write timeouts bound the call.
	ctx := context.Background()
	if len(batch) == 1 {
		c := batch[0]
		c.err = scriptLeave.Run(ctx, b.c.(redis.Scripter), c.keys, c.args...).Err()
		close(c.done)
		return
	}
	p := b.c.Pipeline()
	cmds := make([]*redis.Cmd, len(batch))
	for i, c := range batch {
		cmds[i] = scriptLeave.EvalSha(ctx, p, c.keys, c.args...)
	}
	_, _ = p.Exec(ctx)
	for i, c := range batch {
		c.err = cmds[i].Err()
		if c.err != nil && isNoScript(c.err) {
			c.err = scriptLeave.Run(ctx, b.c.(redis.Scripter), c.keys, c.args...).Err()
		}
		close(c.done)
	}
}
