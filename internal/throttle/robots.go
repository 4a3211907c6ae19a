package throttle

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/crawlpolite/crawlpolite/internal/policy"
	"github.com/crawlpolite/crawlpolite/internal/proxy"
	"github.com/crawlpolite/crawlpolite/pkg/robots"
	"github.com/crawlpolite/crawlpolite/pkg/semaphore"
)

// checkRobots looks r up in its origin's robots.txt (cached for the cluster) for the crawler's
// product token, and refuses it when disallowed. An unreachable robots.txt disallows everything
// (RFC 9309 2.3.1.4), a missing one allows everything; rules too costly to evaluate for this path
// refuse it (the site chose them). The error is the client's own cancellation.
// The file is the host's (o); what this process shows is counted under the request's group.
func (t *Throttle) checkRobots(ctx context.Context, r *http.Request, o policy.Origin, group string) (*robots.Group, *proxy.Refusal, error) {
	res := t.robots.Get(ctx, o.URL())
	agent := robots.ProductToken(r.Header.Get("User-Agent"))
	if agent == "" {
		agent = "*"
	}
	g := res.For(agent)
	path := r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		path += "?" + r.URL.RawQuery
	}
	v := g.Check(path)
	status := res.Status.String()
	switch {
	case errors.Is(res.Err, robots.ErrInternal):
		status = "internal_error"
	case v.Exhausted:
		status = "too_complex"
	}
	t.metrics.robots.WithLabelValues(status).Inc()
	t.hosts.robots(group, robotsWord(status))
	if v.Allowed {
		return g, nil, nil
	}
	if res.Status == robots.Unreachable && res.Code == 0 && res.Err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		// Our own turn for the fetch was refused (waitTimeout, Redis down): that answer, as is.
		if ref := new(proxy.Refusal); errors.As(res.Err, &ref) {
			return nil, ref, nil
		}
		if errors.Is(res.Err, robots.ErrInternal) {
			return nil, proxy.Internal("robots.txt could not be evaluated (an internal error, logged and counted)", res.Err), nil
		}
		// No answer at all: the origin itself is unreachable (DNS, refused, a forbidden address),
		// which says more than "robots.txt unreachable".
		return nil, proxy.Classify(res.Err), nil
	}
	details := "robots.txt disallows this path for " + agent
	switch {
	case v.Exhausted:
		details = "robots.txt rules are too costly to evaluate for this path (a bounded matcher gave up): refused"
	case res.Status == robots.Unreachable:
		details = "robots.txt is unreachable, which disallows every path until it can be fetched"
	}
	return nil, proxy.RobotsDenied(details, res.Err), nil
}

// RobotsGate is robots.Fetcher.Gate: every robots.txt request, and every redirect hop (which may
// point at a third-party host), takes a turn on its host's semaphore like the crawler's own
// requests, with the host's policy limits, on its group's key (a fetch reaches the same server).
// It is never asked while holding a turn: robots is checked before a request asks for its own, and
// a redirect hop's turn is released before the next hop asks. A group by IP resolves the name
// here; the fetch itself is not pinned to that address (the robots fetcher dials by name).
func (t *Throttle) RobotsGate(ctx context.Context, u *url.URL) (robots.Turn, error) {
	o, err := policy.ParseOrigin(u.Scheme, u.Host)
	if err != nil {
		return nil, err
	}
	lim := t.policy.Load().For(o.Host, o.Port)
	key, _, err := t.group(ctx, lim.GroupBy, o)
	if err != nil {
		return nil, groupRefusal(ctx, err)
	}
	l := semaphore.Limits{Concurrency: lim.MaxConcurrency, Delay: lim.Delay(0)}
	lease, sem, err := t.acquire(ctx, key, l, lim.WaitTimeout)
	if err != nil {
		return nil, t.refusal(ctx, err, l)
	}
	return &robotsTurn{t: t, sem: sem, lease: lease}, nil
}

// robotsTurn is a robots.txt fetch's turn.
type robotsTurn struct {
	t     *Throttle
	sem   *semaphore.Semaphore
	lease *semaphore.Lease
	began bool // Start let the fetch go
}

func (r *robotsTurn) Start(ctx context.Context) error {
	err := r.lease.Wait(ctx)
	r.began = err == nil
	return err
}

// Done counts the fetch as started when it ends: the robots fetcher does not say when its request
// was written, and the end is never earlier, so the next start is at least a delay after it.
func (r *robotsTurn) Done() {
	if r.began {
		r.lease.Started(time.Now())
	}
	r.t.release(r.sem, r.lease)
}
