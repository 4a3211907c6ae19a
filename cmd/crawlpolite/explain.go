package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/crawlpolite/crawlpolite/internal/policy"
	"github.com/crawlpolite/crawlpolite/pkg/robots"
	"github.com/crawlpolite/crawlpolite/pkg/semaphore"
)

// reason is one fact behind a verdict. Effect is "refuses", "waits" or "none" (context).
type reason struct {
	Kind   string `json:"kind"` // robots, policy, crawl-delay, backoff, delay, queue
	Effect string `json:"effect"`
	Detail string `json:"detail"`
}

type explainReply struct {
	URL     string            `json:"url"`
	Host    string            `json:"host"`    // the host's key: its robots.txt and backoff
	Group   string            `json:"group"`   // the semaphore key the turn is taken on (Host for groupBy host)
	GroupBy string            `json:"groupBy"` // host, domain or ip
	Verdict string            `json:"verdict"` // allowed, wait, refused
	Reasons []reason          `json:"reasons"`
	Policy  map[string]string `json:"policy"`
	Robots  *explainRobots    `json:"robots,omitempty"`
	State   explainState      `json:"state"`
}

type explainRobots struct {
	Status     string `json:"status"`
	Code       int    `json:"code,omitempty"`
	Group      string `json:"group,omitempty"`
	Rule       string `json:"rule,omitempty"`
	CrawlDelay string `json:"crawlDelay,omitempty"`
	ExpiresIn  string `json:"expiresIn,omitempty"`
}

type explainState struct {
	InFlight     int    `json:"inFlight"`
	Starting     int    `json:"starting"`
	Waiting      int    `json:"waiting"`
	Limit        int    `json:"limit"`
	Delay        string `json:"delay"`
	NextStartIn  string `json:"nextStartIn"`
	BackoffLeft  string `json:"backoffLeft"`
	BackoffLevel int    `json:"backoffLevel"`
}

// cmdExplain says why a request to a URL would be allowed, wait or be refused right now, with what
// the sidecars would use: the policy (--policy-file, else the built-in defaults), the shared
// robots.txt cache and the semaphore's live state.
func cmdExplain(ctx context.Context, c *common, args []string) error {
	fs := newFlags("explain")
	c.flags(fs)
	agent := fs.String("agent", "*", "the crawler's product token (its User-Agent's first word)")
	polFile := fs.String("policy-file", "", "policy document the sidecars read (default: the built-in defaults)")
	dnsServer := fs.String("resolver", "", "for groupBy ip: DNS server (host:port) the sidecars resolve origins with (their --resolver); empty for the system resolver")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: explain URL", errUsage)
	}
	u, err := url.Parse(fs.Arg(0))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: %q is not an http(s) URL", errUsage, fs.Arg(0))
	}
	host, port, err := policy.Normalize(u.Host, u.Scheme)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	var data []byte
	if *polFile != "" {
		if data, err = os.ReadFile(*polFile); err != nil {
			return err
		}
	}
	pol, err := policy.Parse(data)
	if err != nil {
		return err
	}
	rdb, err := c.redis(ctx)
	if err != nil {
		return err
	}
	defer c.done()
	key := policy.Key(host, port)
	in := explainInput{url: u, key: key, agent: *agent, pol: pol.Explain(host, port)}
	in.group, in.groupErr = groupKey(ctx, in.pol.HostPolicy.GroupBy, host, port, *dnsServer)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if in.pol.HostPolicy.EnforceRobots {
		r, err := lookupRobots(ctx, rdb, u.Scheme+"://"+key)
		if err != nil {
			return err
		}
		in.robots = &r
	}
	if in.state, err = observe(ctx, semaphore.NewObserver(rdb, semaphore.Options{Prefix: c.prefix}), in.group, key); err != nil {
		return err
	}
	out := explain(in)
	if c.output == "json" {
		return writeJSON(c.stdout, out)
	}
	fmt.Fprintf(c.stdout, "%s: %s (key %s)\n", out.URL, out.Verdict, out.Group)
	for _, r := range out.Reasons {
		fmt.Fprintf(c.stdout, "  %-11s %-7s %s\n", r.Kind, r.Effect, r.Detail)
	}
	return nil
}

// observe reads the state a request's turn depends on, as the sidecar's throttle.State does: the
// group's (nothing when group is empty: it did not resolve), with the host's own backoff, which a
// 429 or 503 records on the host's key whatever its group.
func observe(ctx context.Context, o *semaphore.Observer, group, hostKey string) (semaphore.HostState, error) {
	keys := []string{hostKey}
	if group != "" && group != hostKey {
		keys = []string{group, hostKey}
	}
	obs, err := o.Observe(ctx, keys)
	if err != nil {
		return semaphore.HostState{}, err
	}
	st := obs.Hosts[0]
	if group == "" {
		return semaphore.HostState{Key: hostKey, Backoff: st.Backoff, BackoffLevel: st.BackoffLevel}, nil
	}
	if len(keys) == 2 {
		st.Backoff, st.BackoffLevel = obs.Hosts[1].Backoff, obs.Hosts[1].BackoffLevel
	}
	return st, nil
}

type explainInput struct {
	url      *url.URL
	key      string // the host's
	group    string // the semaphore key of the turn; empty when groupBy ip did not resolve
	groupErr error  // why it did not
	agent    string
	pol      policy.Explanation
	robots   *cachedRobots // nil when the policy ignores robots.txt
	state    semaphore.HostState
}

// explain decides the verdict from what was read; it does no I/O.
func explain(in explainInput) explainReply {
	l := in.pol.HostPolicy
	s := in.state
	out := explainReply{URL: in.url.String(), Host: in.key, Group: in.group, GroupBy: l.GroupBy.String(), Policy: map[string]string{}, State: explainState{
		InFlight: s.InFlight, Starting: s.Starting, Waiting: s.Waiting, Limit: s.Limit, Delay: s.Delay.String(),
		NextStartIn: s.NextStart.String(), BackoffLeft: s.Backoff.String(), BackoffLevel: s.BackoffLevel}}
	for k, v := range in.pol.Source {
		out.Policy[k] = v
	}
	add := func(kind, effect, format string, a ...any) {
		out.Reasons = append(out.Reasons, reason{Kind: kind, Effect: effect, Detail: fmt.Sprintf(format, a...)})
	}
	add("policy", "none", "maxConcurrency %d (%s), minDelay %s (%s), maxCrawlDelay %s (%s), waitTimeout %s (%s)",
		l.MaxConcurrency, in.pol.Source["maxConcurrency"], l.MinDelay, in.pol.Source["minDelay"],
		l.MaxCrawlDelay, in.pol.Source["maxCrawlDelay"], l.WaitTimeout, in.pol.Source["waitTimeout"])
	out.Reasons = append(out.Reasons, groupReason(in))
	var crawlDelay time.Duration
	if r := in.robots; r == nil {
		add("robots", "none", "robots.txt ignored (robots: ignore, %s)", in.pol.Source["robots"])
	} else {
		out.Robots = robotsFacts(r, in.agent)
		crawlDelay = robotsReason(r, in, add, out.Robots)
	}
	if crawlDelay > 0 {
		capped := min(crawlDelay, l.MaxCrawlDelay)
		effect := "none"
		if capped > l.MinDelay {
			effect = "waits"
		}
		if capped < crawlDelay {
			add("crawl-delay", effect, "Crawl-delay %s capped to %s by maxCrawlDelay (%s); delay between starts %s",
				crawlDelay, capped, in.pol.Source["maxCrawlDelay"], l.Delay(crawlDelay))
		} else {
			add("crawl-delay", effect, "Crawl-delay %s (under maxCrawlDelay %s); delay between starts %s", crawlDelay, l.MaxCrawlDelay, l.Delay(crawlDelay))
		}
	}
	if s.Backoff > 0 {
		effect := "waits"
		if s.Backoff > l.WaitTimeout {
			effect = "refuses" // the sidecar answers 429 at once rather than hold a slot it cannot use in time
		}
		add("backoff", effect, "the origin asked to slow down (429/503): backoff %s left (level %d), beyond waitTimeout %s: %v",
			s.Backoff.Round(time.Millisecond), s.BackoffLevel, l.WaitTimeout, s.Backoff > l.WaitTimeout)
	} else if s.NextStart > 0 {
		add("delay", "waits", "next start in %s (delay %s since the last start)", s.NextStart.Round(time.Millisecond), s.Delay)
	}
	limit := l.MaxConcurrency
	if s.Limit > 0 && s.InFlight+s.Starting > 0 {
		limit = min(limit, s.Limit)
	}
	if s.InFlight+s.Starting >= limit || s.Waiting > 0 {
		add("queue", "waits", "%d in flight and %d starting of limit %d; %d queued ahead (first come, first served)",
			s.InFlight, s.Starting, limit, s.Waiting)
	}
	// robots.txt is checked before a request asks for its turn: a request it refuses never queues.
	for _, r := range out.Reasons {
		if r.Kind == "robots" && r.Effect == "refuses" {
			for i := range out.Reasons {
				if out.Reasons[i].Effect == "waits" {
					out.Reasons[i].Effect = "none"
				}
			}
			break
		}
	}
	out.Verdict = "allowed"
	for _, r := range out.Reasons {
		switch {
		case r.Effect == "refuses":
			out.Verdict = "refused"
		case r.Effect == "waits" && out.Verdict == "allowed":
			out.Verdict = "wait"
		}
	}
	return out
}

func robotsFacts(r *cachedRobots, agent string) *explainRobots {
	er := &explainRobots{Status: r.status(), Group: r.group(agent)}
	if r.res != nil {
		er.Code = r.res.Code
		er.ExpiresIn = r.expiresIn.Round(time.Second).String()
	}
	return er
}

// robotsReason adds the robots.txt reason and returns the group's Crawl-delay.
func robotsReason(r *cachedRobots, in explainInput, add func(kind, effect, format string, a ...any), er *explainRobots) time.Duration {
	if r.res == nil {
		add("robots", "none", "robots.txt of %s is not cached: the sidecar fetches it before this request, and its rules decide", r.base)
		return 0
	}
	path := in.url.EscapedPath()
	if in.url.RawQuery != "" {
		path += "?" + in.url.RawQuery
	}
	g := r.res.For(in.agent)
	v := g.Check(path)
	er.Rule = v.Rule()
	if d := g.CrawlDelay(); d > 0 {
		er.CrawlDelay = d.String()
	}
	switch {
	case r.res.Status == robots.Unreachable:
		add("robots", "refuses", "robots.txt unreachable (HTTP %d): every path is disallowed until it can be fetched (expires in %s)", r.res.Code, er.ExpiresIn)
	case r.res.Status == robots.Unavailable:
		add("robots", "none", "robots.txt unavailable (HTTP %d): every path is allowed", r.res.Code)
	case v.Exhausted:
		add("robots", "refuses", "robots.txt rules are too costly to evaluate for this path (%s)", er.Group)
	case !v.Allowed:
		add("robots", "refuses", "%q disallows %s (%s)", v.Rule(), path, er.Group)
	case v.Rule() != "":
		add("robots", "none", "%q allows %s (%s)", v.Rule(), path, er.Group)
	default:
		add("robots", "none", "no rule matches %s (%s): allowed", path, er.Group)
	}
	return g.CrawlDelay()
}
