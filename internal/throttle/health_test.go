package throttle

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestHealthPerNode: a failure on one node opens that node's breaker only; keys on other nodes stay
// healthy, and the node's hook closes it again on an answer.
func TestHealthPerNode(t *testing.T) {
	nodes := map[string]string{"{a}": "n1", "{b}": "n2"}
	h := NewHealth(func(key string) string { return nodes[key] })
	reloads := 0
	hook := h.Hook("n1", func() { reloads++ }).(*nodeHook)
	fail := func(context.Context, redis.Cmder) error {
		return &net.OpError{Op: "dial", Err: errors.New("connection refused")}
	}
	_ = hook.ProcessHook(fail)(t.Context(), redis.NewCmd(t.Context(), "evalsha"))
	if h.Healthy("{a}") {
		t.Error("the key on the failed node is healthy")
	}
	for range 3 { // not only a probe: every caller goes through
		if !h.Healthy("{b}") {
			t.Error("a key on another node is not healthy")
		}
	}
	if reloads != 1 {
		t.Errorf("onDown called %d times, want 1", reloads)
	}
	ok := func(context.Context, redis.Cmder) error { return nil }
	_ = hook.ProcessHook(ok)(t.Context(), redis.NewCmd(t.Context(), "evalsha"))
	if !h.Healthy("{a}") {
		t.Error("an answer did not close the breaker")
	}
	// The caller's own cancellation says nothing about the node.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_ = hook.ProcessHook(func(ctx context.Context, _ redis.Cmder) error { return ctx.Err() })(ctx, redis.NewCmd(ctx, "evalsha"))
	if !h.Healthy("{a}") {
		t.Error("a cancelled call opened the breaker")
	}
}

func TestUnanswered(t *testing.T) {
	for name, c := range map[string]struct {
		err  error
		want bool
	}{
		"nil":         {nil, false},
		"nil reply":   {redis.Nil, false},
		"cancelled":   {context.Canceled, false},
		"refused":     {&net.OpError{Op: "dial", Err: errors.New("refused")}, true},
		"timeout":     {&net.OpError{Op: "read", Err: errors.New("i/o timeout")}, true},
		"closed pool": {redis.ErrClosed, true},
		"noscript":    {replyErr("NOSCRIPT No matching script"), false},
		"clusterdown": {replyErr("CLUSTERDOWN The cluster is down"), true},
		"loading":     {replyErr("LOADING Redis is loading the dataset in memory"), true},
	} {
		t.Run(name, func(t *testing.T) {
			if got := unanswered(c.err); got != c.want {
				t.Errorf("unanswered(%v) = %v, want %v", c.err, got, c.want)
			}
		})
	}
}

// replyErr is an error reply from Redis, as go-redis types them (redis.Error).
type replyErr string

func (e replyErr) Error() string { return string(e) }
func (replyErr) RedisError()     {}
