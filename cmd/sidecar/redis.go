package main

import (
	"fmt"
	neturl "net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// newRedis connects to the --redis URL; nil for an empty URL. Forms:
//
//	redis://[user:password@]host:port[/db]                     one server (rediss:// for TLS)
//	redis+sentinel://host:26379?master_name=m&addr=host2:26379  Sentinel-managed primary
//	redis+cluster://host:6379?addr=host2:6379                   Redis Cluster, seed nodes
//
// Query parameters are go-redis's (dial_timeout, pool_size, ...).
func newRedis(url string) (redis.UniversalClient, error) {
	if url == "" {
		return nil, nil
	}
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return nil, fmt.Errorf("--redis %q: not a URL", url)
	}
	base, kind, _ := strings.Cut(scheme, "+")
	if base != "redis" && base != "rediss" {
		return nil, fmt.Errorf("--redis: scheme %q: want redis, rediss, redis+sentinel or redis+cluster", scheme)
	}
	plain := base + "://" + rest
	u, err := neturl.Parse(plain)
	if err != nil {
		return nil, fmt.Errorf("--redis: %w", err)
	}
	switch kind {
	case "":
		o, err := redis.ParseURL(plain)
		if err != nil {
			return nil, fmt.Errorf("--redis: %w", err)
		}
		o.DialerRetries, o.MaxRetryBackoff = failFast(u, &o.MaxRetries)
		return redis.NewClient(o), nil
	case "sentinel":
		o, err := redis.ParseFailoverURL(plain)
		if err != nil {
			return nil, fmt.Errorf("--redis: %w", err)
		}
		o.DialerRetries, o.MaxRetryBackoff = failFast(u, &o.MaxRetries)
		return redis.NewFailoverClient(o), nil
	case "cluster":
		o, err := redis.ParseClusterURL(plain)
		if err != nil {
			return nil, fmt.Errorf("--redis: %w", err)
		}
		o.DialerRetries, o.MaxRetryBackoff = failFast(u, &o.MaxRetries)
		return redis.NewClusterClient(o), nil
	}
	return nil, fmt.Errorf("--redis: scheme %q: want redis, rediss, redis+sentinel or redis+cluster", scheme)
}

// failFast shortens go-redis's retries, unless the URL sets max_retries: a request waits on them,
// and its defaults (4 attempts of 5 dials each) make every call during an outage take seconds. The
// scripts are idempotent, so one retry still covers a dropped connection.
func failFast(u *neturl.URL, maxRetries *int) (dialerRetries int, maxBackoff time.Duration) {
	if !u.Query().Has("max_retries") {
		*maxRetries = 1
	}
	return 1, 50 * time.Millisecond
}
