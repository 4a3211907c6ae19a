package semaphore

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	//go:embed lua/common.lua
	luaCommon string
	//go:embed lua/acquire.lua
	luaAcquire string
	//go:embed lua/leave.lua
	luaLeave string
	//go:embed lua/refresh.lua
	luaRefresh string
	//go:embed lua/backoff.lua
	luaBackoff string
	//go:embed lua/state.lua
	luaState string
)

// Scripts are loaded with EVALSHA, falling back to EVAL (redis.Script.Run) after a restart or failover
// that emptied the script cache.
var (
	scriptAcquire = redis.NewScript(withCommon(luaAcquire))
	scriptLeave   = redis.NewScript(withCommon(luaLeave))
	scriptRefresh = redis.NewScript(luaCommon + luaRefresh)
	scriptBackoff = redis.NewScript(luaCommon + luaBackoff)
	scriptState   = redis.NewScript(luaCommon + luaState)
)

// withCommon inserts common.lua's helpers where script asks for them ("-- @common"), after its
// fast path: Lua creates a script's local functions on every call, and the fast path needs none.
func withCommon(script string) string {
	if !strings.Contains(script, "\n-- @common\n") {
		panic("semaphore: script without -- @common")
	}
	return strings.Replace(script, "\n-- @common\n", "\n"+luaCommon, 1)
}

// Client is what the Redis backend needs of go-redis: scripts, and pub/sub for grants pushed to
// waiters. *redis.Client, *redis.ClusterClient and the Sentinel-backed failover client satisfy it.
type Client interface {
	redis.Scripter
	Subscribe(ctx context.Context, channels ...string) *redis.PubSub
}

var (
	_ Client = (*redis.Client)(nil)
	_ Client = (*redis.ClusterClient)(nil)
)

// NewRedis returns a Semaphore shared through Redis with every other process using the same Redis
// and Options.Prefix. It subscribes to this process's wake-up channel in the background; a push
// missed while the subscription is down is covered by the waiters' heartbeat.
func NewRedis(c Client, opts Options) (*Semaphore, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	w := newWaiters()
	rs := &redisStore{c: c, opts: opts, channel: opts.Prefix + ":wake:" + newID(), done: make(chan struct{})}
	if one, ok := c.(single); ok {
		rs.batch = &batcher{c: one}
	}
	rs.ps = c.Subscribe(context.Background(), rs.channel)
	go rs.listen(w)
	return &Semaphore{opts: opts, st: rs, waiters: w}, nil
}

type redisStore struct {
	c       Client
	opts    Options
	channel string
	ps      *redis.PubSub
	done    chan struct{}
	batch   *batcher // acquires, releases and refreshes share pipelines (one server only); nil: each is sent alone
}

// keys returns the four keys of a semaphore key (meta m, queue w, params p, alive d; see
// lua/common.lua), all with the same hash tag, cut from one string: one allocation for the four.
// The queue and alive sets hold negated scores; they were q and a when their scores were not, so
// sidecars of the two layouts never read each other's sets as their own.
func (r *redisStore) keys(key string) []string {
	p := r.opts.Prefix + ":{" + key + "}:"
	all := p + "m" + p + "w" + p + "p" + p + "d"
	n := len(p) + 1
	return []string{all[:n], all[n : 2*n], all[2*n : 3*n], all[3*n:]}
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

// since is the time elapsed since a holder's actual start in whole microseconds, rounded down (the
// script adds one for that), or -1 when it has not begun.
func since(st started) int64 {
	if st.at.IsZero() {
		return -1
	}
	return max(0, time.Since(st.at).Microseconds())
}

// run runs script in the next shared pipeline on one server, else on its own. wait: once sent, the
// caller needs the reply even if ctx ends first (see batcher.run).
func (r *redisStore) run(ctx context.Context, wait bool, script *redis.Script, keys []string, args ...any) (any, error) {
	var v any
	var err error
	if r.batch == nil {
		v, err = script.Run(ctx, r.c, keys, args...).Result()
	} else {
		v, err = r.batch.run(ctx, wait, script, keys, args...)
	}
	return v, ownErr(ctx, err)
}

// ownErr is what a call that failed once its caller's deadline had passed returns: the caller's
// context's error. The call failed because of that deadline (go-redis's read deadline, or a shared
// pipeline's context, which ends at its latest caller's deadline), but the caller's context may not
// say so yet (each context's timer fires on its own, late on a loaded machine), and the caller would
// take the failure for the backend's.
func ownErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		<-ctx.Done()
		return ctx.Err()
	}
	return err
}

func (r *redisStore) acquire(ctx context.Context, key, rid string, l Limits) (reply, error) {
	// An acquire already sent is not given up when ctx ends: its caller then leaves
	// (Semaphore.abandon), and that leave must reach the server after this script, never before it
	// on another pipeline.
	v, err := r.run(ctx, true, scriptAcquire, r.keys(key), rid, l.Concurrency, ms(l.Delay), ms(r.opts.Lease),
		ms(r.opts.WaiterTTL), r.opts.MaxQueue, r.channel, ms(r.opts.Heartbeat))
	if err != nil {
		return reply{}, err
	}
	n, err := ints(v, 2)
	if err != nil {
		return reply{}, err
	}
	switch n[0] {
	case 1:
		if len(n) != 5 {
			return reply{}, fmt.Errorf("semaphore: acquire reply %v", n)
		}
		return reply{status: granted, grant: grantOf(n[1:])}, nil
	case 0:
		if len(n) != 3 {
			return reply{}, fmt.Errorf("semaphore: acquire reply %v", n)
		}
		return reply{status: queued, recheck: time.Duration(n[2]) * time.Millisecond}, nil
	case -1:
		return reply{status: full}, nil
	}
	return reply{}, fmt.Errorf("semaphore: acquire reply %v", n)
}

// grantOf decodes token, start (server ms), wait (ms) and ttl (ms).
func grantOf(n []int64) grant {
	return grant{token: n[0], scheduled: time.UnixMilli(n[1]),
		wait: time.Duration(n[2]) * time.Millisecond, ttl: time.Duration(n[3]) * time.Millisecond}
}

// leave is retried until it gets through or ctx ends: a slot or a queue place left behind by a
// release that failed (a node down, a cluster refusing writes while a master fails over) would
// otherwise block the key for the rest of a lease or a waiter TTL after Redis is back. The script is
// idempotent and fenced by rid and token, so a retry of one that did run changes nothing.
func (r *redisStore) leave(ctx context.Context, key, rid string, token int64, st started) error {
	wait := 50 * time.Millisecond
	for {
		// since is read again for each attempt: the later it is read, the closer the start the
		// script records comes to the true one (never before it).
		_, err := r.run(ctx, false, scriptLeave, r.keys(key), rid, token, since(st), ms(st.delay))
		if err == nil || ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

func (r *redisStore) refresh(ctx context.Context, key, rid string, token int64, st started) (time.Duration, error) {
	x, err := r.run(ctx, false, scriptRefresh, r.keys(key), rid, token, ms(r.opts.Lease), since(st), ms(st.delay))
	if err != nil {
		return 0, err
	}
	v, ok := x.(int64)
	switch {
	case !ok:
		return 0, fmt.Errorf("semaphore: unexpected refresh reply %T %v", x, x)
	case v <= 0:
		return 0, errLost
	}
	return time.Duration(v) * time.Millisecond, nil
}

func (r *redisStore) backoff(ctx context.Context, key, id string, retryAfter time.Duration) (time.Duration, error) {
	v, err := scriptBackoff.Run(ctx, r.c, r.keys(key), ms(retryAfter), ms(r.opts.BackoffBase), ms(r.opts.MaxBackoff), id).Result()
	if err != nil {
		return 0, err
	}
	n, err := ints(v, 2)
	if err != nil {
		return 0, err
	}
	return time.Duration(n[0]) * time.Millisecond, nil
}

func (r *redisStore) state(ctx context.Context, key string) (State, error) {
	v, err := scriptState.Run(ctx, r.c, r.keys(key)).Result()
	if err != nil {
		return State{}, err
	}
	n, err := ints(v, 7)
	if err != nil {
		return State{}, err
	}
	msd := func(x int64) time.Duration { return time.Duration(x) * time.Millisecond }
	return State{Holders: int(n[0]), Waiters: int(n[1]), Limit: int(n[2]), Delay: msd(n[3]),
		NextStart: msd(n[4]), Backoff: msd(n[5]), BackoffLevel: int(n[6])}, nil
}

// listen delivers grants pushed on this process's channel: "rid token start wait ttl".
func (r *redisStore) listen(w *waiters) {
	defer close(r.done)
	for m := range r.ps.Channel(redis.WithChannelSize(1024)) {
		f := strings.Fields(m.Payload)
		if len(f) != 5 {
			continue
		}
		n := make([]int64, 4)
		ok := true
		for i, s := range f[1:] {
			var err error
			if n[i], err = strconv.ParseInt(s, 10, 64); err != nil {
				ok = false
			}
		}
		if ok {
			w.deliver(f[0], grantOf(n))
		}
	}
}

func (r *redisStore) close() error {
	err := r.ps.Close()
	<-r.done
	return err
}

// ints decodes a script's array reply of integers, checking every element's type.
func ints(v any, atLeast int) ([]int64, error) {
	a, ok := v.([]any)
	if !ok || len(a) < atLeast {
		return nil, fmt.Errorf("semaphore: unexpected script reply %T %v", v, v)
	}
	out := make([]int64, len(a))
	for i, e := range a {
		x, ok := e.(int64)
		if !ok {
			return nil, fmt.Errorf("semaphore: unexpected script reply element %T %v", e, e)
		}
		out[i] = x
	}
	return out, nil
}
