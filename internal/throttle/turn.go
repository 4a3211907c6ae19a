package throttle

import (
	"context"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/crawlpolite/crawlpolite/pkg/semaphore"
)

// turn is one admitted request's lease.
type turn struct {
	t     *Throttle
	sem   *semaphore.Semaphore // the one the lease came from
	lease *semaphore.Lease
	label string
	began time.Time  // when the request asked for its turn
	pin   netip.Addr // groupBy ip: the address the group was chosen by, which the request is dialled to
	// backoffKey is where a 429/503 is recorded: the host's key, which is the lease's unless the
	// host is in a group (see Throttle.hostBackoff).
	backoffKey string
	// started is set once Wait returned: the request counts as in flight.
	started bool
	once    sync.Once
	sent    sync.Once // the lateness is measured at the first send
}

// Wait sleeps until the lease's start. The caller releases the turn whatever Wait returns.
func (u *turn) Wait(ctx context.Context) error {
	if err := u.lease.Wait(ctx); err != nil {
		return err
	}
	u.t.metrics.wait.WithLabelValues(u.label).Observe(time.Since(u.began).Seconds())
	u.t.metrics.inFlight.WithLabelValues(u.label).Inc()
	u.t.hosts.started(u.lease.Key())
	u.started = true
	return nil
}

// Sent records the request's actual start with its lease, whose release moves the host's next start
// to a delay after it (see semaphore.Lease.Started), and measures how late after the turn's start
// the request first went.
func (u *turn) Sent() {
	now := time.Now()
	u.lease.Started(now)
	u.sent.Do(func() { u.t.metrics.late.Observe(max(0, now.Sub(u.lease.Start())).Seconds()) })
}

// DialAddr implements proxy.DialPin.
func (u *turn) DialAddr() netip.Addr { return u.pin }

func (u *turn) AfterLost(f func()) (stop func() bool) { return u.lease.AfterLost(f) }

// Response pushes the host's next start back on 429 and 503, by Retry-After when the origin sent one,
// else exponentially. It runs before the response is streamed, so no turn of this pod starts early.
func (u *turn) Response(status int, h http.Header) {
	if status != http.StatusTooManyRequests && status != http.StatusServiceUnavailable {
		return
	}
	ra := retryAfter(h.Get("Retry-After"), time.Now())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	d, err := u.sem.Backoff(ctx, u.backoffKey, ra)
	if err != nil {
		u.t.log.Warn("backoff not recorded", "key", u.backoffKey, "status", status, "error", err.Error())
		return
	}
	u.t.metrics.backoffs.WithLabelValues(u.label).Inc()
	u.t.log.Info("origin asked to slow down", "key", u.backoffKey, "status", status, "backoff", d.String())
}

func (u *turn) Release() {
	u.once.Do(func() {
		if u.started {
			u.t.metrics.inFlight.WithLabelValues(u.label).Dec()
		}
		u.t.hosts.released(u.lease.Key(), u.started)
		u.t.release(u.sem, u.lease)
	})
}

const maxRetryAfter = (1 << 31) * time.Second

// retryAfter reads a Retry-After value (RFC 9110 10.2.3): delay-seconds or an HTTP-date. 0 when
// absent or unreadable, which asks for exponential backoff instead. Either form is capped at
// maxRetryAfter (the policy's maxCrawlDelay bounds it further).
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, int64(maxRetryAfter/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryAfter)
	}
	return 0
}
