package throttle

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/crawlpolite/crawlpolite/internal/policy"
	"github.com/crawlpolite/crawlpolite/internal/proxy"
)

// Resolver finds the address a request to host (normalized) and port will be dialled to, as the
// proxy will dial it: proxy.Upstream.Resolve, which answers through the proxy's resolver and
// skips addresses the destination guard refuses.
type Resolver func(ctx context.Context, host string, port int) (netip.Addr, error)

// UseResolver makes groupBy: ip resolve through r (the proxy's upstream) instead of the system's
// resolver without a guard. Call it before the first Admit.
func (t *Throttle) UseResolver(r Resolver) { t.resolve = r }

// systemResolve is the Resolver without a proxy: the system's first answer.
func systemResolve(ctx context.Context, host string, _ int) (netip.Addr, error) {
	if a, err := netip.ParseAddr(trimBrackets(host)); err == nil {
		return a, nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.Addr{}, err
	}
	if len(addrs) == 0 {
		return netip.Addr{}, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
	}
	return addrs[0].Unmap(), nil
}

// group is the semaphore key of a request to o under g, and for a group by IP the address the
// request is to be dialled to (resolved here, once, before the turn). For policy.GroupHost it is
// o's key and nothing else happens: no lookup.
func (t *Throttle) group(ctx context.Context, g policy.Group, o policy.Origin) (string, netip.Addr, error) {
	switch g {
	case policy.GroupHost:
		return o.Key(), netip.Addr{}, nil
	case policy.GroupDomain:
		return policy.GroupKey(g, o.Host, o.Port, netip.Addr{}), netip.Addr{}, nil
	}
	a, err := t.resolve(ctx, o.Host, o.PortNumber())
	if err != nil {
		return "", netip.Addr{}, err
	}
	return policy.GroupKey(g, o.Host, o.Port, a), a, nil
}

// hostBackoff waits out the backoff a 429 or 503 put on a grouped host (recorded on the host's own
// key, see turn.Response), before the request queues on its group: the backoff is the host's, as
// its robots.txt is, so one host of a shared server asking to slow down does not stop the others,
// which still share the group's budget. A backoff beyond timeout is answered at once, as Admit
// answers a start beyond the wait the policy allows. It costs grouped requests one read of the
// host's state (a round trip on Redis); groupBy host records the backoff on the lease's own key
// and never comes here. The read failing (the backend down) is no backoff: the acquire that
// follows fails, or falls back, as it would.
func (t *Throttle) hostBackoff(ctx context.Context, hostKey string, timeout time.Duration) error {
	if !t.health.Healthy("{" + hostKey + "}") {
		return nil
	}
	st, err := t.sem.State(ctx, hostKey)
	if err != nil || st.Backoff <= 0 {
		return nil
	}
	if st.Backoff >= timeout {
		return waitTimeout(st.Backoff)
	}
	tm := time.NewTimer(st.Backoff)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// groupRefusal answers a failed resolution as a failed dial would be answered.
func groupRefusal(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return proxy.Classify(err)
}

func trimBrackets(h string) string {
	if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
		return h[1 : len(h)-1]
	}
	return h
}
