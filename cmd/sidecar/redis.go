package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	neturl "net/url"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crawlpolite/crawlpolite/internal/redisurl"
	"github.com/crawlpolite/crawlpolite/internal/throttle"
	"github.com/crawlpolite/crawlpolite/pkg/robots"
)

// Timeouts of every Redis call, unless the URL sets them. A script runs in well under a millisecond;
// a node that has not answered in half a second is treated as down (its breaker opens), and a request
// fails over to the fallback or gets its 503 within about a second, instead of go-redis's 3 s per
// attempt (SIGSTOP, a black-holed route, a proxy that accepts and never answers).
const (
	callTimeout = 500 * time.Millisecond
	dialTimeout = 500 * time.Millisecond
	// clusterReload is how often a cluster client re-reads the slot map even with nothing failing;
	// go-redis's default is a minute.
	clusterReload = 2 * time.Second
)

// redisConn is the Redis client of the sidecar with the view of its health the throttle and the
// robots.txt cache share. On Redis Cluster it subscribes to wake-ups through a client of its own.
type redisConn struct {
	redis.UniversalClient
	health *throttle.Health
	sub    *redis.Client // cluster only: pub/sub on any live node
}

// oneServer is the sidecar's client of one Redis server (one node, or the primary Sentinel names).
// Its Options method is how pkg/semaphore tells a single-server client from a cluster: on one
// server the scripts of concurrent requests share pipelines (each still one script in one round
// trip), which a cluster must not do (a pipeline waits for its slowest node).
type oneServer struct {
	*redisConn
	c *redis.Client
}

// Options is the client's: one server (for Sentinel, the failover client's view of its primary).
func (o oneServer) Options() *redis.Options { return o.c.Options() }

// newRedis connects to the --redis URL; nil for an empty URL. Forms:
//
//	redis://[user:password@]host:port[/db]                     one server (rediss:// for TLS)
//	redis+sentinel://host:26379?master_name=m&addr=host2:26379  Sentinel-managed primary
//	redis+cluster://host:6379?addr=host2:6379                   Redis Cluster, seed nodes
//
// Query parameters are go-redis's (dial_timeout, read_timeout, max_retries, ...). A non-empty
// password (from CRAWLPOLITE_REDIS_PASSWORD) replaces the URL's; errors never carry the URL's password.
func newRedis(url, password string) (redis.UniversalClient, error) {
	if url == "" {
		return nil, nil
	}
	rdb, err := parseRedis(url, password)
	if err != nil {
		return nil, redactErr(err, url)
	}
	return rdb, nil
}

func parseRedis(url, password string) (redis.UniversalClient, error) {
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return nil, errors.New("--redis: not a URL")
	}
	base, kind, _ := strings.Cut(scheme, "+")
	if base != "redis" && base != "rediss" {
		return nil, fmt.Errorf("--redis: scheme %q: want redis, rediss, redis+sentinel or redis+cluster", scheme)
	}
	if kind == "cluster" || kind == "sentinel" {
		rest = redisurl.SeedList(rest) // a,b,c: seed nodes or Sentinels, as addr parameters
	}
	plain := base + "://" + rest
	u, err := neturl.Parse(plain)
	if err != nil {
		return nil, fmt.Errorf("--redis: %w", err)
	}
	q := u.Query()
	health := throttle.NewHealth(nil)
	switch kind {
	case "":
		o, err := redis.ParseURL(plain)
		if err != nil {
			return nil, fmt.Errorf("--redis: %w", err)
		}
		f := failFast(q, &o.MaxRetries, &o.ReadTimeout, &o.WriteTimeout, &o.DialTimeout, 1)
		o.DialerRetries, o.MaxRetryBackoff, o.PoolTimeout = f.dialerRetries, f.maxBackoff, f.poolTimeout
		if password != "" {
			o.Password = password
		}
		c := redis.NewClient(o)
		c.AddHook(health.Hook("", nil))
		return oneServer{redisConn: &redisConn{UniversalClient: c, health: health}, c: c}, nil
	case "sentinel":
		o, err := redis.ParseFailoverURL(plain)
		if err != nil {
			return nil, fmt.Errorf("--redis: %w", err)
		}
		f := failFast(q, &o.MaxRetries, &o.ReadTimeout, &o.WriteTimeout, &o.DialTimeout, 1)
		o.DialerRetries, o.MaxRetryBackoff, o.PoolTimeout = f.dialerRetries, f.maxBackoff, f.poolTimeout
		if password != "" {
			o.Password = password
		}
		c := redis.NewFailoverClient(o)
		c.AddHook(health.Hook("", nil))
		return oneServer{redisConn: &redisConn{UniversalClient: c, health: health}, c: c}, nil
	case "cluster":
		o, err := redis.ParseClusterURL(plain)
		if err != nil {
			return nil, fmt.Errorf("--redis: %w", err)
		}
		if password != "" {
			o.Password = password
		}
		return newCluster(q, o), nil
	}
	return nil, fmt.Errorf("--redis: scheme %q: want redis, rediss, redis+sentinel or redis+cluster", scheme)
}

// newCluster returns a cluster client that follows a failover within a second of the promotion and
// keeps one shard's failure to that shard:
//   - the node clients do not retry; the cluster client retries once (MaxRedirects 1), on the node the
//     slot map names then, so a dead or hung node costs at most two calls' timeouts;
//   - a node that fails to answer reloads the slot map (go-redis reloads it only on MOVED, or once a
//     minute, and kept dialling a dead master for that long) and opens that node's breaker only;
//   - reads go to masters (no RouteRandomly, RouteByLatency or ReadOnly): every call is a script that
//     writes;
//   - wake-ups are subscribed on any live node (Redis Cluster forwards PUBLISH to every node), not on
//     the master of the channel's slot, which may be the one that died.
func newCluster(q neturl.Values, o *redis.ClusterOptions) *redisConn {
	if !q.Has("max_retries") {
		o.MaxRetries = -1
	}
	if !q.Has("max_redirects") {
		o.MaxRedirects = 1
	}
	f := failFast(q, new(int), &o.ReadTimeout, &o.WriteTimeout, &o.DialTimeout, 0)
	o.DialerRetries, o.MaxRetryBackoff, o.PoolTimeout = f.dialerRetries, f.maxBackoff, f.poolTimeout
	o.RouteRandomly, o.RouteByLatency, o.ReadOnly = false, false, false
	o.ClusterStateReloadInterval = clusterReload
	c := redis.NewClusterClient(o)
	health := throttle.NewHealth(throttle.ClusterLocator(c))
	nodes := &nodeList{addrs: append([]string(nil), o.Addrs...)}
	reload := func() { c.ReloadState(context.Background()) }
	c.OnNewNode(func(n *redis.Client) {
		addr := n.Options().Addr
		nodes.add(addr)
		n.AddHook(health.Hook(addr, reload))
	})
	so := &redis.Options{
		Addr: "cluster", Username: o.Username, Password: o.Password, TLSConfig: o.TLSConfig,
		DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
		MaxRetries: -1, DialerRetries: 1, PoolSize: 1,
		Dialer: nodes.dial(o.DialTimeout, o.TLSConfig),
	}
	return &redisConn{UniversalClient: c, health: health, sub: redis.NewClient(so)}
}

// Subscribe subscribes through the pub/sub client of its own on a cluster, else the client's.
func (r *redisConn) Subscribe(ctx context.Context, channels ...string) *redis.PubSub {
	if r.sub != nil {
		return r.sub.Subscribe(ctx, channels...)
	}
	return r.UniversalClient.Subscribe(ctx, channels...)
}

func (r *redisConn) Close() error {
	if r.sub != nil {
		_ = r.sub.Close()
	}
	return r.UniversalClient.Close()
}

// nodeList is every cluster node address seen (seeds and the slot map's nodes), for the pub/sub
// client to dial whichever answers, starting after the last one that did.
type nodeList struct {
	mu    sync.Mutex
	addrs []string
	next  int
}

func (l *nodeList) add(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range l.addrs {
		if a == addr {
			return
		}
	}
	l.addrs = append(l.addrs, addr)
}

func (l *nodeList) dial(timeout time.Duration, tlsConf *tls.Config) func(ctx context.Context, network, _ string) (net.Conn, error) {
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		l.mu.Lock()
		addrs := append([]string(nil), l.addrs...)
		start := l.next
		l.mu.Unlock()
		var lastErr error
		for i := range addrs {
			k := (start + i) % len(addrs)
			d := net.Dialer{Timeout: timeout}
			c, err := d.DialContext(ctx, network, addrs[k])
			if err != nil {
				lastErr = err
				continue
			}
			l.mu.Lock()
			l.next = k + 1 // a node that dropped us is tried last next time
			l.mu.Unlock()
			if tlsConf == nil {
				return c, nil
			}
			cfg := tlsConf.Clone() // go-redis does not wrap what a custom Dialer returns
			if cfg.ServerName == "" {
				cfg.ServerName, _, _ = net.SplitHostPort(addrs[k])
			}
			tc := tls.Client(c, cfg)
			hctx, cancel := context.WithTimeout(ctx, timeout)
			err = tc.HandshakeContext(hctx)
			cancel()
			if err != nil {
				_ = c.Close()
				lastErr = err
				continue
			}
			return tc, nil
		}
		return nil, fmt.Errorf("redis+cluster: no node answers for pub/sub: %w", lastErr)
	}
}

type fastSettings struct {
	dialerRetries int
	maxBackoff    time.Duration
	poolTimeout   time.Duration
}

// failFast shortens go-redis's timeouts and retries, each unless the URL sets it: a request waits on
// them, and go-redis's defaults (3 s reads, 5 s dials, 4 attempts of 5 dials each) make every call
// during an outage take seconds. The scripts are idempotent per request id, so retries still
// cover a dropped connection: one here (retries), or the cluster client's one redirect.
func failFast(q neturl.Values, maxRetries *int, read, write, dial *time.Duration, retries int) fastSettings {
	if !q.Has("max_retries") {
		*maxRetries = retries
	}
	if !q.Has("read_timeout") {
		*read = callTimeout
	}
	if !q.Has("write_timeout") {
		*write = callTimeout
	}
	if !q.Has("dial_timeout") {
		*dial = dialTimeout
	}
	return fastSettings{dialerRetries: 1, maxBackoff: 50 * time.Millisecond, poolTimeout: *read}
}

// healthOf is the health view of a client from newRedis, nil for none.
func healthOf(c redis.UniversalClient) *throttle.Health {
	switch r := c.(type) {
	case *redisConn:
		return r.health
	case oneServer:
		return r.health
	}
	return nil
}

// robotsRedis is the robots.txt cache's Redis: calls about a key whose node the throttle holds down
// fail at once (the cache then fetches robots.txt itself, as when Redis is unreachable) instead of
// each paying a timeout. A robots miss during an outage costs no Redis round trip.
type robotsRedis struct {
	c redis.UniversalClient
	h *throttle.Health
}

// newRobotsRedis wraps c for the robots.txt cache; nil for no Redis.
func newRobotsRedis(c redis.UniversalClient) robots.RedisClient {
	if c == nil {
		return nil
	}
	h := healthOf(c)
	if h == nil {
		return c
	}
	return robotsRedis{c: c, h: h}
}

var errSkipped = fmt.Errorf("redis: skipped while the node recovers")

func (r robotsRedis) GetRange(ctx context.Context, key string, start, end int64) *redis.StringCmd {
	if !r.h.Healthy(key) {
		cmd := redis.NewStringCmd(ctx, "getrange", key)
		cmd.SetErr(errSkipped)
		return cmd
	}
	return r.c.GetRange(ctx, key, start, end)
}

func (r robotsRedis) PTTL(ctx context.Context, key string) *redis.DurationCmd {
	if !r.h.Healthy(key) {
		cmd := redis.NewDurationCmd(ctx, time.Millisecond, "pttl", key)
		cmd.SetErr(errSkipped)
		return cmd
	}
	return r.c.PTTL(ctx, key)
}

func (r robotsRedis) Set(ctx context.Context, key string, value any, exp time.Duration) *redis.StatusCmd {
	if !r.h.Healthy(key) {
		cmd := redis.NewStatusCmd(ctx, "set", key)
		cmd.SetErr(errSkipped)
		return cmd
	}
	return r.c.Set(ctx, key, value, exp)
}

func (r robotsRedis) SetNX(ctx context.Context, key string, value any, exp time.Duration) *redis.BoolCmd {
	if !r.h.Healthy(key) {
		cmd := redis.NewBoolCmd(ctx, "set", key)
		cmd.SetErr(errSkipped)
		return cmd
	}
	return r.c.SetNX(ctx, key, value, exp)
}

func (r robotsRedis) Del(ctx context.Context, keys ...string) *redis.IntCmd {
	if len(keys) > 0 && !r.h.Healthy(keys[0]) {
		cmd := redis.NewIntCmd(ctx, "del", keys[0])
		cmd.SetErr(errSkipped)
		return cmd
	}
	return r.c.Del(ctx, keys...)
}

// redactErr removes the URL's userinfo (raw and as net/url quotes it) from err's text: startup errors
// reach pod status through FallbackToLogsOnError.
func redactErr(err error, url string) error {
	msg := err.Error()
	_, rest, _ := strings.Cut(url, "://")
	if userinfo, _, ok := strings.Cut(rest, "@"); ok && userinfo != "" {
		for _, s := range []string{userinfo, neturl.PathEscape(userinfo), neturl.QueryEscape(userinfo)} {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
		if _, pw, ok := strings.Cut(userinfo, ":"); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	}
	return errors.New(msg)
}

// redisTarget is the URL without its userinfo, for logs.
func redisTarget(url string) string {
	if url == "" {
		return "in-process"
	}
	scheme, rest, _ := strings.Cut(url, "://")
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		if j := strings.IndexByte(rest, '/'); j < 0 || j > i {
			rest = rest[i+1:]
		}
	}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		rest = rest[:i]
	}
	return scheme + "://" + rest
}
