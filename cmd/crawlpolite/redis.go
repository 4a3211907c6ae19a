package main

import (
	"errors"
	"fmt"
	neturl "net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crawlpolite/crawlpolite/internal/redisurl"
)

// connect opens the --redis URL in every form the sidecar reads (cmd/sidecar/redis.go):
//
//	redis://[user:password@]host:port[/db]                     one server (rediss:// for TLS)
//	redis+sentinel://host:26379?master_name=m&addr=host2:26379  Sentinel-managed primary
//	redis+cluster://host:6379?addr=host2:6379                   Redis Cluster, seed nodes
//
// A non-empty password (CRAWLPOLITE_REDIS_PASSWORD) replaces the URL's; errors never carry it.
// The CLI only reads, with short timeouts of its own: it never writes the semaphore's keys.
func connect(url, password string) (redis.UniversalClient, error) {
	c, err := parseRedis(url, password)
	if err != nil {
		return nil, redact(err, url, password)
	}
	return c, nil
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
	timeouts := func(read, write, dial *time.Duration) {
		for _, t := range []struct {
			name string
			d    *time.Duration
		}{{"read_timeout", read}, {"write_timeout", write}, {"dial_timeout", dial}} {
			if !q.Has(t.name) {
				*t.d = 2 * time.Second
			}
		}
	}
	switch kind {
	case "":
		o, err := redis.ParseURL(plain)
		if err != nil {
			return nil, fmt.Errorf("--redis: %w", err)
		}
		timeouts(&o.ReadTimeout, &o.WriteTimeout, &o.DialTimeout)
		if password != "" {
			o.Password = password
		}
		return redis.NewClient(o), nil
	case "sentinel":
		o, err := redis.ParseFailoverURL(plain)
		if err != nil {
			return nil, fmt.Errorf("--redis: %w", err)
		}
		timeouts(&o.ReadTimeout, &o.WriteTimeout, &o.DialTimeout)
		if password != "" {
			o.Password = password
		}
		return redis.NewFailoverClient(o), nil
	case "cluster":
		o, err := redis.ParseClusterURL(plain)
		if err != nil {
			return nil, fmt.Errorf("--redis: %w", err)
		}
		timeouts(&o.ReadTimeout, &o.WriteTimeout, &o.DialTimeout)
		if password != "" {
			o.Password = password
		}
		return redis.NewClusterClient(o), nil
	}
	return nil, fmt.Errorf("--redis: scheme %q: want redis, rediss, redis+sentinel or redis+cluster", scheme)
}

// redact removes the URL's userinfo and the password from err's text.
func redact(err error, url, password string) error {
	msg := err.Error()
	if password != "" {
		msg = strings.ReplaceAll(msg, password, "xxxxx")
	}
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
