package throttle

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Health is the sidecar's view of which Redis nodes answer, one breaker per node: on Redis Cluster a
// shard that fails opens the breaker of its own node only, and the hosts whose slots live on the
// other shards never notice. Calls learn it two ways: the throttle trips and resets the breaker of a
// key's node from what an acquire returned, and a go-redis hook on each node's client (Hook) from
// what every command and dial on that node returned.
//
// It is the one place that answers "should I call Redis for this key now" (Healthy), so that the
// robots.txt cache skips Redis while the throttle does, instead of paying failing calls on a miss.
type Health struct {
	locate func(key string) string // the address of the node serving key, "" when unknown or one node

	mu    sync.Mutex
	nodes map[string]*breaker
}

// NewHealth returns a Health whose keys map to nodes by locate (for a cluster client, its master
// for the key's slot; see ClusterLocator). A nil locate puts every key on one node, the client's.
func NewHealth(locate func(key string) string) *Health {
	if locate == nil {
		locate = func(string) string { return "" }
	}
	return &Health{locate: locate, nodes: map[string]*breaker{}}
}

// ClusterLocator returns a locate function for NewHealth: the address of the master that c's slot
// map names for the key's slot. It costs no round trip.
func ClusterLocator(c *redis.ClusterClient) func(key string) string {
	return func(key string) string {
		m, err := c.MasterForKey(context.Background(), key)
		if err != nil {
			return ""
		}
		return m.Options().Addr
	}
}

func (h *Health) node(addr string) *breaker {
	h.mu.Lock()
	defer h.mu.Unlock()
	b := h.nodes[addr]
	if b == nil {
		b = &breaker{}
		h.nodes[addr] = b
	}
	return b
}

// Healthy reports whether a call about key (any Redis key; only its hash tag matters) should go to
// Redis now: true while the node serving it answers, and, once a second while it does not, true for
// exactly one caller, whose call probes the node. Callers told false should fail fast or fall back.
func (h *Health) Healthy(key string) bool { return !h.node(h.locate(key)).open() }

// Down records that a call about key failed because Redis did not answer.
func (h *Health) Down(key string) { h.node(h.locate(key)).trip() }

// Up records that a call about key got an answer.
func (h *Health) Up(key string) { h.node(h.locate(key)).reset() }

// Hook returns a go-redis hook for the client of the node at addr (the same address locate
// returns; "" for a client that is the only node). Commands and dials that fail for want of an
// answer open the node's breaker and call onDown (nil for nothing; a cluster reloads its slot map
// there, since go-redis does so only on MOVED); any answer closes it.
func (h *Health) Hook(addr string, onDown func()) redis.Hook {
	return &nodeHook{b: h.node(addr), onDown: onDown}
}

type nodeHook struct {
	b      *breaker
	onDown func()
}

func (n *nodeHook) record(err error) {
	if !unanswered(err) {
		if err == nil || isRedisReply(err) {
			n.b.reset()
		}
		return
	}
	n.b.trip()
	if n.onDown != nil {
		n.onDown()
	}
}

func (n *nodeHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err != nil && ctx.Err() == nil {
			n.record(err)
		}
		return c, err
	}
}

func (n *nodeHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if ctx.Err() == nil {
			n.record(err)
		}
		return err
	}
}

func (n *nodeHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if ctx.Err() == nil {
			n.record(err)
		}
		return err
	}
}

// unanswered reports whether err means the node did not serve the command: no connection, no reply
// in time, or a node that says it cannot serve (cluster down, loading, primary lost). Replies such as
// NOSCRIPT or a script error are answers. The caller's own cancellation is neither.
func unanswered(err error) bool {
	switch {
	case err == nil, errors.Is(err, redis.Nil), errors.Is(err, context.Canceled):
		return false
	case isRedisReply(err):
		msg := err.Error()
		for _, p := range []string{"CLUSTERDOWN", "LOADING", "MASTERDOWN", "TRYAGAIN"} {
			if strings.HasPrefix(msg, p) {
				return true
			}
		}
		return false
	}
	return true
}

func isRedisReply(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}
