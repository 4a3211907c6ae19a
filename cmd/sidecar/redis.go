package main

import (
	"errors"
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
// Query parameters are go-redis's (dial_timeout, pool_size, ...). A non-empty password (from
// CRAWLPOLITE_REDIS_PASSWORD) replaces the URL's; errors never carry the URL's password.
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
		if password != "" {
			o.Password = password
		}
		return redis.NewClient(o), nil
	case "sentinel":
		o, err := redis.ParseFailoverURL(plain)
		if err != nil {
			return nil, fmt.Errorf("--redis: %w", err)
		}
		o.DialerRetries, o.MaxRetryBackoff = failFast(u, &o.MaxRetries)
		if password != "" {
			o.Password = password
		}
		return redis.NewFailoverClient(o), nil
	case "cluster":
		o, err := redis.ParseClusterURL(plain)
		if err != nil {
			return nil, fmt.Errorf("--redis: %w", err)
		}
		o.DialerRetries, o.MaxRetryBackoff = failFast(u, &o.MaxRetries)
		if password != "" {
			o.Password = password
		}
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
