package throttle

import (
	"context"
	"net/http"

	"github.com/crawlpolite/crawlpolite/internal/proxy"
	"github.com/crawlpolite/crawlpolite/pkg/robots"
)

// checkRobots looks r up in its origin's robots.txt (cached for the cluster) for the crawler's
// product token, and refuses it when disallowed. An unreachable robots.txt disallows everything
// (RFC 9309 2.3.1.4), a missing one allows everything. The error is the client's own cancellation.
func (t *Throttle) checkRobots(ctx context.Context, r *http.Request, key string) (*robots.Group, *proxy.Refusal, error) {
	res := t.robots.Get(ctx, r.URL.Scheme+"://"+key)
	t.metrics.robots.WithLabelValues(res.Status.String()).Inc()
	agent := robots.ProductToken(r.Header.Get("User-Agent"))
	if agent == "" {
		agent = "*"
	}
	g := res.For(agent)
	path := r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		path += "?" + r.URL.RawQuery
	}
	if g.Allowed(path) {
		return g, nil, nil
	}
	details := "robots.txt disallows this path for " + agent
	if res.Status == robots.Unreachable && res.Code == 0 && res.Err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		// No answer at all: the origin itself is unreachable (DNS, refused, a forbidden address),
		// which says more than "robots.txt unreachable".
		return nil, proxy.Classify(res.Err), nil
	}
	if res.Status == robots.Unreachable {
		details = "robots.txt is unreachable, which disallows every path until it can be fetched"
	}
	return nil, &proxy.Refusal{Status: http.StatusForbidden, Type: "http_request_denied", Reason: "robots",
		Details: details, Err: res.Err}, nil
}
