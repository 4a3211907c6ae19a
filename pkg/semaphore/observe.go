package semaphore

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

//go:embed lua/observe.lua
var luaObserve string

var scriptObserve = redis.NewScript(luaObserve)

// HostState is the live state of one key as Observe reads it from Redis.
type HostState struct {
	Key          string
	InFlight     int           // leases whose start has passed: requests at the origin now
	Starting     int           // leases granted whose start is still ahead (waiting for the gate)
	Waiting      int           // requests queued for a slot
	Limit        int           // concurrency of the last grant
	Delay        time.Duration // delay of the last grant
	NextStart    time.Duration // until the gate opens (0: open)
	Backoff      time.Duration // backoff left (0: none)
	BackoffLevel int
}

// Observed is what one Observe call read, with the Redis clock reading it was taken at.
type Observed struct {
	At    time.Time // Redis TIME when read (the latest of the calls on Cluster)
	Hosts []HostState
}

// ObserveClient is what Observe needs of go-redis: scripts and pipelines. *redis.Client,
// *redis.ClusterClient and the Sentinel-backed failover client satisfy it.
type ObserveClient interface {
	redis.Scripter
	Pipeline() redis.Pipeliner
}

var (
	_ ObserveClient = (*redis.Client)(nil)
	_ ObserveClient = (*redis.ClusterClient)(nil)
)

// Observer reads keys' live state from the Redis a Redis semaphore with the same prefix uses. It
// writes nothing and takes no part in the protocol, so it can run from anywhere that reaches Redis
// (a command-line tool, say).
type Observer struct {
	c       ObserveClient
	prefix  string
	cluster bool
	batch   int
}

// MaxObserveBatch is the most keys one observe script reads (on one node, hosts of any slot; on
// Cluster, hosts of one slot).
const MaxObserveBatch = 256

// NewObserver returns an Observer of the keys under opts.Prefix. On a *redis.Client (one server, or
// Sentinel's failover client) up to MaxObserveBatch keys share one script; on any other client (a
// *redis.ClusterClient, or a wrapper that may hide one) keys are grouped by hash slot, one script
// per slot, so no script is cross-slot. Every script of one call goes in one pipeline.
func NewObserver(c ObserveClient, opts Options) *Observer {
	opts = opts.withDefaults()
	_, single := c.(*redis.Client)
	return &Observer{c: c, prefix: opts.Prefix, cluster: !single, batch: MaxObserveBatch}
}

// Observe reads the state of each key. A key with no state in Redis reads as zeros. The result is
// in the order of keys.
func (o *Observer) Observe(ctx context.Context, keys []string) (Observed, error) {
	if len(keys) == 0 {
		return Observed{}, nil
	}
	batches := o.group(keys)
	run := func() ([]*redis.Cmd, error) {
		p := o.c.Pipeline()
		cmds := make([]*redis.Cmd, len(batches))
		for i, b := range batches {
			cmds[i] = scriptObserve.EvalSha(ctx, p, o.keysOf(keys, b))
		}
		_, err := p.Exec(ctx)
		return cmds, err
	}
	cmds, err := run()
	if err != nil && isNoScript(err) {
		if err := scriptObserve.Load(ctx, o.c).Err(); err != nil {
			return Observed{}, fmt.Errorf("%w: load observe script: %w", ErrUnavailable, err)
		}
		cmds, err = run()
	}
	if err != nil {
		return Observed{}, fmt.Errorf("%w: observe: %w", ErrUnavailable, err)
	}
	out := Observed{Hosts: make([]HostState, len(keys))}
	for i, b := range batches {
		n, err := ints(cmds[i].Val(), 1+8*len(b))
		if err != nil {
			return Observed{}, err
		}
		if at := time.UnixMilli(n[0]); at.After(out.At) {
			out.At = at
		}
		for j, k := range b {
			v := n[1+8*j:]
			msd := func(x int64) time.Duration { return time.Duration(x) * time.Millisecond }
			out.Hosts[k] = HostState{Key: keys[k], InFlight: int(v[0]), Starting: int(v[1]), Waiting: int(v[2]),
				Limit: int(v[3]), Delay: msd(v[4]), NextStart: msd(v[5]), Backoff: msd(v[6]), BackoffLevel: int(v[7])}
		}
	}
	return out, nil
}

// group splits the indexes of keys into script batches: by slot on Cluster, by size elsewhere.
func (o *Observer) group(keys []string) [][]int {
	var out [][]int
	if !o.cluster {
		for i := 0; i < len(keys); i += o.batch {
			b := make([]int, 0, min(o.batch, len(keys)-i))
			for j := i; j < min(i+o.batch, len(keys)); j++ {
				b = append(b, j)
			}
			out = append(out, b)
		}
		return out
	}
	bySlot := map[uint16]int{} // slot -> index in out of its open batch
	for i, k := range keys {
		s := Slot(k)
		j, ok := bySlot[s]
		if !ok || len(out[j]) == o.batch {
			j = len(out)
			bySlot[s] = j
			out = append(out, nil)
		}
		out[j] = append(out[j], i)
	}
	return out
}

func (o *Observer) keysOf(keys []string, b []int) []string {
	ks := make([]string, 0, 4*len(b))
	for _, i := range b {
		p := o.prefix + ":{" + keys[i] + "}:"
		ks = append(ks, p+"h", p+"g", p+"d", p+"m")
	}
	return ks
}

func isNoScript(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && strings.HasPrefix(re.Error(), "NOSCRIPT")
}
