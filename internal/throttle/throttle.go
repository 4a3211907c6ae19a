package throttle

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crawlpolite/crawlpolite/internal/policy"
	"github.com/crawlpolite/crawlpolite/internal/proxy"
	"github.com/crawlpolite/crawlpolite/pkg/robots"
	"github.com/crawlpolite/crawlpolite/pkg/semaphore"
)

// Throttle is the sidecar's proxy.Politeness.
type Throttle struct {
	sem      *semaphore.Semaphore
	fallback *semaphore.Semaphore // in-process turns while sem's backend is down; nil to fail closed
	robots   *robots.Cache
	policy   atomic.Pointer[policy.Policy]
	log      *slog.Logger
	metrics  *metrics
	releases sync.WaitGroup // releases in flight, off the request's critical path
	health   *Health        // per Redis node: requests for a key whose node failed skip it for a while
	hosts    *Hosts         // this process's requests per key and phase, for /debug/hosts and the active registry
	resolve  Resolver       // for groupBy: ip, the address a request will be dialled to
}

var _ proxy.Politeness = (*Throttle)(nil)

// New returns a throttle taking turns from sem under pol. fallback, when not nil, serves turns while
// sem's backend is unavailable. Metrics are registered on reg.
func New(sem, fallback *semaphore.Semaphore, rc *robots.Cache, pol *policy.Policy, log *slog.Logger, reg prometheus.Registerer) (*Throttle, error) {
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	t := &Throttle{sem: sem, fallback: fallback, robots: rc, log: log, metrics: m, health: NewHealth(nil), hosts: NewHosts(),
		resolve: systemResolve}
	t.policy.Store(pol)
	return t, nil
}

// UseHealth makes the throttle share h, whose hooks watch the Redis client's nodes, instead of its
// own view of one node. Call it before the first Admit.
func (t *Throttle) UseHealth(h *Health) { t.health = h }

// Health is the throttle's view of Redis, to share with what else calls Redis (the robots.txt cache).
func (t *Throttle) Health() *Health { return t.health }

// Hosts counts this process's requests per key and phase.
func (t *Throttle) Hosts() *Hosts { return t.hosts }

// SetPolicy replaces the policy for requests admitted from now on.
func (t *Throttle) SetPolicy(p *policy.Policy) { t.policy.Store(p) }

// Policy returns the policy in force.
func (t *Throttle) Policy() *policy.Policy { return t.policy.Load() }

// Tunnel reports whether authority's policy asks for blind tunnels (tls: tunnel).
func (t *Throttle) Tunnel(authority string) bool {
	o, err := policy.ParseOrigin("https", authority)
	return err == nil && t.policy.Load().For(o.Host, o.Port).Tunnel
}

// Admit implements proxy.Politeness: the turn it returns is taken, and may start at Turn.Wait.
func (t *Throttle) Admit(ctx context.Context, r *http.Request) (proxy.Turn, error) {
	o, err := policy.ParseOrigin(r.URL.Scheme, r.URL.Host)
	if err != nil {
		return nil, proxy.BadHost(err)
	}
	pol := t.policy.Load()
	lim := pol.For(o.Host, o.Port)
	// robots.txt and its Crawl-delay are the host's; the turn is the group's (the host itself
	// unless the rule groups by domain or IP), with this request's own delay.
	hostKey := o.Key()
	key, pin, err := t.group(ctx, lim.GroupBy, o)
	if err != nil {
		return nil, groupRefusal(ctx, err)
	}
	label := t.metrics.label(pol, o.Host, o.Port, key)
	var crawlDelay time.Duration
	if lim.EnforceRobots && r.Method != http.MethodConnect {
		g, ref, err := t.checkRobots(ctx, r, o, key)
		switch {
		case err != nil:
			return nil, err
		case ref != nil:
			return nil, ref
		}
		crawlDelay = g.CrawlDelay()
	} else if !lim.EnforceRobots {
		t.hosts.robots(key, "ignored")
	}
	began := time.Now()
	l := semaphore.Limits{Concurrency: lim.MaxConcurrency, Delay: lim.Delay(crawlDelay)}
	counted := t.hosts.waiting(key, delaySource(lim.MinDelay, crawlDelay, lim.MaxCrawlDelay))
	if key != hostKey {
		if err := t.hostBackoff(ctx, hostKey, lim.WaitTimeout); err != nil {
			counted(false)
			return nil, err
		}
	}
	lease, sem, err := t.acquire(ctx, key, l, lim.WaitTimeout-time.Since(began))
	counted(err == nil)
	if err != nil {
		return nil, t.refusal(ctx, err, l)
	}
	if late := time.Until(lease.Start()) - (lim.WaitTimeout - time.Since(began)); late > 0 {
		// The start is beyond the wait the policy allows (a long backoff): do not sit on the slot.
		t.release(sem, lease)
		t.hosts.released(key, false)
		return nil, waitTimeout(time.Until(lease.Start()))
	}
	return &turn{t: t, sem: sem, lease: lease, label: label, began: began, pin: pin, backoffKey: hostKey}, nil
}

// acquire takes a turn from the shared semaphore, or from the fallback when the shared one is down.
func (t *Throttle) acquire(ctx context.Context, key string, l semaphore.Limits, timeout time.Duration) (*semaphore.Lease, *semaphore.Semaphore, error) {
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var (
		lease *semaphore.Lease
		err   error
	)
	tag := "{" + key + "}" // the slot of every Redis key of key
	if !t.health.Healthy(tag) {
		err = errBackendDown
	} else {
		lease, err = t.sem.Acquire(actx, key, l)
		switch {
		case errors.Is(err, semaphore.ErrUnavailable):
			t.health.Down(tag)
		default:
			t.health.Up(tag)
		}
	}
	if err == nil || t.fallback == nil || !errors.Is(err, semaphore.ErrUnavailable) {
		return lease, t.sem, err
	}
	t.metrics.fallbacks.Inc()
	lease, err = t.fallback.Acquire(actx, key, l)
	return lease, t.fallback, err
}

// refusal maps an acquire error to the answer: the client's own cancellation stays as is.
func (t *Throttle) refusal(ctx context.Context, err error, l semaphore.Limits) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, semaphore.ErrQueueFull):
		return waitTimeout(max(l.Delay, time.Second))
	case errors.Is(err, semaphore.ErrUnavailable):
		return proxy.BackendDown("the shared semaphore (Redis) is unreachable", err)
	}
	return proxy.Internal("could not take a turn", err)
}

func waitTimeout(retry time.Duration) *proxy.Refusal {
	return proxy.WaitTimeout("the wait for a turn on this host passed its waitTimeout", retry)
}

// release gives a lease from sem back: in the background when that is a network call, as the
// response is already on its way; inline when sem is in-process, which is cheaper than a goroutine.
func (t *Throttle) release(sem *semaphore.Semaphore, l *semaphore.Lease) {
	if sem.InProcess() {
		t.give(context.Background(), l)
		return
	}
	t.releases.Add(1)
	go func() {
		defer t.releases.Done()
		// Retried until the lease would have run out anyway (at least 5 s): a release lost to a
		// Redis that hangs or fails over would hold the slot for the rest of the lease.
		ctx, cancel := context.WithDeadline(context.Background(), later(l.Expires(), time.Now().Add(5*time.Second)))
		defer cancel()
		t.give(ctx, l)
	}()
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (t *Throttle) give(ctx context.Context, l *semaphore.Lease) {
	if err := l.Release(ctx); err != nil {
		t.log.Warn("release failed; the lease runs out by itself", "key", l.Key(), "error", err.Error())
	}
}

// WaitReleases blocks until every release in flight (given back in the background) is done, or ctx
// ends. (Turn.Wait is another wait: for a request's start.)
func (t *Throttle) WaitReleases(ctx context.Context) error {
	done := make(chan struct{})
	go func() { t.releases.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// State is the live state in the semaphore (the shared one when it answers) of the group of a host
// ("example.com", "example.com:80", "example.com:8443"): the host itself unless its rule groups by
// domain or IP (see Key). A grouped host's backoff is its own (see hostBackoff), so Backoff and
// BackoffLevel are the host's, the rest the group's.
func (t *Throttle) State(ctx context.Context, authority string) (semaphore.State, error) {
	hostKey, key, err := t.keys(ctx, authority)
	if err != nil {
		return semaphore.State{}, err
	}
	st, err := t.sem.State(ctx, key)
	if err != nil || key == hostKey {
		return st, err
	}
	own, err := t.sem.State(ctx, hostKey)
	st.Backoff, st.BackoffLevel = own.Backoff, own.BackoffLevel
	return st, err
}
