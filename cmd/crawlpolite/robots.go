package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crawlpolite/crawlpolite/internal/policy"
	"github.com/crawlpolite/crawlpolite/pkg/robots"
)

// errNotCached is what the CLI's robots.txt lookup answers for a host whose file is not in the
// shared cache: the CLI never fetches robots.txt itself (it would do so from the wrong network,
// outside the sidecars' politeness) and never writes the cache.
var errNotCached = errors.New("not in the shared cache")

// readOnly is the sidecars' robots.txt cache in Redis with every write refused: a lookup reads the
// shared entry and, on a miss, fails its fetch claim at once instead of claiming.
type readOnly struct{ robots.Store }

var errReadOnly = errors.New("crawlpolite: read-only")

func (readOnly) Save(context.Context, string, string, time.Duration) error { return errReadOnly }
func (readOnly) Claim(context.Context, string, time.Duration) (bool, error) {
	return false, errReadOnly
}
func (readOnly) Unclaim(context.Context, string) error { return errReadOnly }

// cachedRobots is a host's entry in the shared robots.txt cache.
type cachedRobots struct {
	base      string
	res       *robots.Result // nil when not cached
	expiresIn time.Duration
}

// lookupRobots reads base's ("https://example.com") robots.txt from the shared cache only.
func lookupRobots(ctx context.Context, rdb redis.UniversalClient, base string) (cachedRobots, error) {
	f := &robots.Fetcher{Gate: func(context.Context, *url.URL) (robots.Turn, error) { return nil, errNotCached }}
	cache := robots.NewCache(f, robots.CacheOptions{Store: readOnly{robots.NewRedisStore(rdb, "")}})
	res := cache.Get(ctx, base)
	if errors.Is(res.Err, errNotCached) {
		if err := rdb.Ping(ctx).Err(); err != nil { // a miss, or Redis down?
			return cachedRobots{}, fmt.Errorf("robots.txt cache: %w", err)
		}
		return cachedRobots{base: base}, nil
	}
	return cachedRobots{base: base, res: &res, expiresIn: res.TTL}, nil
}

// status is the entry's status as top and explain name it.
func (r cachedRobots) status() string {
	switch {
	case r.res == nil:
		return "not_cached"
	case r.res.Status == robots.Fetched:
		return "ok"
	}
	return r.res.Status.String()
}

// group describes the group agent gets: its own, or the * groups it falls back to.
func (r cachedRobots) group(agent string) string {
	if r.res == nil || r.res.Status != robots.Fetched {
		return ""
	}
	if strings.ToLower(agent) != "*" && r.res.Rules.For(agent) != r.res.Rules.For("*") {
		return "user-agent: " + strings.ToLower(agent)
	}
	return "user-agent: * (no group names " + agent + ")"
}

// cmdRobots shows a host's cached robots.txt: status, expiry, and for --agent the group with its
// Crawl-delay and, with --path, the deciding rule.
func cmdRobots(ctx context.Context, c *common, args []string) error {
	fs := newFlags("robots")
	c.flags(fs)
	agent := fs.String("agent", "*", "crawler product token to pick the group for")
	scheme := fs.String("scheme", "https", "scheme of the host's robots.txt (https or http)")
	p := fs.String("path", "", "also decide this path (and query)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: robots HOST", errUsage)
	}
	h, port, err := policy.Normalize(fs.Arg(0), *scheme)
	if err != nil {
		return fmt.Errorf("%w: host %q: %w", errUsage, fs.Arg(0), err)
	}
	rdb, err := c.redis(ctx)
	if err != nil {
		return err
	}
	defer c.done()
	r, err := lookupRobots(ctx, rdb, *scheme+"://"+policy.Key(h, port))
	if err != nil {
		return err
	}
	out := robotsReply{Base: r.base, Status: r.status(), Group: r.group(*agent)}
	if r.res != nil {
		out.ExpiresIn = r.expiresIn.Round(time.Second).String()
		out.Code = r.res.Code
		g := r.res.For(*agent)
		out.CrawlDelay = g.CrawlDelay().String()
		if r.res.Status == robots.Fetched {
			text, _ := r.res.Rules.MarshalText()
			out.Rules = string(text)
		}
		if *p != "" {
			v := g.Check(*p)
			out.Path, out.Allowed, out.Rule = *p, &v.Allowed, v.Rule()
		}
	}
	if c.output == "json" {
		return writeJSON(c.stdout, out)
	}
	fmt.Fprintf(c.stdout, "%s/robots.txt: %s", out.Base, out.Status)
	if r.res != nil {
		fmt.Fprintf(c.stdout, " (HTTP %d), expires in %s (age unknown: the cache keeps the expiry, not the fetch time)\n", out.Code, out.ExpiresIn)
		fmt.Fprintf(c.stdout, "group for %s: %s  crawl-delay %s\n", *agent, out.Group, out.CrawlDelay)
		if out.Path != "" {
			fmt.Fprintf(c.stdout, "%s: allowed=%v rule=%q\n", out.Path, *out.Allowed, out.Rule)
		}
		fmt.Fprint(c.stdout, out.Rules)
	} else {
		fmt.Fprintln(c.stdout, " (the first request through a sidecar fetches it)")
	}
	return nil
}

type robotsReply struct {
	Base       string `json:"base"`
	Status     string `json:"status"`
	Code       int    `json:"code,omitempty"`
	ExpiresIn  string `json:"expiresIn,omitempty"`
	Group      string `json:"group,omitempty"`
	CrawlDelay string `json:"crawlDelay,omitempty"`
	Path       string `json:"path,omitempty"`
	Allowed    *bool  `json:"allowed,omitempty"`
	Rule       string `json:"rule,omitempty"`
	Rules      string `json:"rules,omitempty"`
}
