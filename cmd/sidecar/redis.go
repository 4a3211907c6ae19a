package main

import (
	"fmt"
	"strings"

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
	switch kind {
	case "":
		o, err := redis.ParseURL(plain)
		if err != nil {
			return nil, fmt.Errorf("--redis: %w", err)
		}
		return redis.NewClient(o), nil
	case "sentinel":
		o, err := redis.ParseFailoverURL(plain)
		if err != nil {
			return nil, fmt.Errorf("--redis: %w", err)
		}
		return redis.NewFailoverClient(o), nil
	case "cluster":
		o, err := redis.ParseClusterURL(plain)
		if err != nil {
			return nil, fmt.Errorf("--redis: %w", err)
		}
		return redis.NewClusterClient(o), nil
	}
	return nil, fmt.Errorf("--redis: scheme %q: want redis, rediss, redis+sentinel or redis+cluster", scheme)
}
