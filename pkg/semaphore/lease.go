package semaphore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Lease is a granted slot on a key. It refreshes itself while held (Lost is closed if it could
// not) until Release gives it back. Its identity (key, request id, fencing token) is fixed when it
// is granted: Release and the refreshes present exactly what the backend granted. A Lease is safe
// for concurrent use.
type Lease struct {
	key       string
	id        string // the request id: unguessable, so only this lease can release its grant
	token     int64
	start     time.Time
	scheduled time.Time

	s        *Semaphore
	lost     context.Context // cancelled when the lease is lost
	lose     context.CancelFunc
	delay    time.Duration // the caller's, reported with its actual start
	mu       sync.Mutex
	began    time.Time // Started's latest instant; zero until called
	expires  time.Time
	timer    *time.Timer
	released bool
}

func (s *Semaphore) newLease(key, rid string, lim Limits, g grant, received time.Time) *Lease {
	l := &Lease{
		key: key, id: rid, token: g.token, scheduled: g.scheduled,
		// The grant was decided before it was received, so counting the wait from receipt can only
		// start late, never early.
		start:   received.Add(g.wait),
		s:       s,
		delay:   lim.Delay,
		expires: received.Add(g.ttl),
	}
	l.lost, l.lose = context.WithCancel(context.Background())
	l.mu.Lock()
	l.scheduleLocked(received)
	l.mu.Unlock()
	return l
}

// Key returns the key the lease holds a slot on.
func (l *Lease) Key() string { return l.key }

// Token returns the lease's fencing token: it increases with every grant on the key while the key
// has state in the backend (a key idle long enough to leave nothing behind starts again), so work
// done under a lease can be fenced against a later holder's.
func (l *Lease) Token() int64 { return l.token }

// Start returns the local time the holder may start: the key's delay after the previous start. It
// is derived from a duration the backend sent, never from comparing clocks.
func (l *Lease) Start() time.Time { return l.start }

// Scheduled returns the start on the backend's clock (Redis TIME; the local clock for NewLocal),
// for observability only: compare it with other Scheduled values, not with the local clock.
func (l *Lease) Scheduled() time.Time { return l.scheduled }

// Wait sleeps until the lease's start. It returns ctx's error if ctx ends first.
func (l *Lease) Wait(ctx context.Context) error {
	d := time.Until(l.start)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Lost is closed when the lease could not be refreshed before it ran out: another request may now
// hold the slot, so the work done under it should stop.
func (l *Lease) Lost() <-chan struct{} { return l.lost.Done() }

// AfterLost arranges for f to run in its own goroutine if the lease is lost, like
// context.AfterFunc: stop unregisters it (false if it already started). Unlike a goroutine waiting
// on Lost, it costs nothing while the lease is held.
func (l *Lease) AfterLost(f func()) (stop func() bool) { return context.AfterFunc(l.lost, f) }

// Started records when the caller's work actually began, at or after Start(): a caller let go late
// (its process starved of CPU, stopped, throttled) starts later than the gate decided. The release
// and every refresh that follow report it, and the backend moves the key's next start to at least
// at + the lease's delay before it grants another slot in the same script: with a concurrency of
// 1 the next start is then never less than the delay after this actual start (with more, slots
// granted before the release keep the starts they were given). at should be taken once the work is
// visible to its counterpart (a request written to its connection), never before: later is safe,
// earlier is not. Of several calls the latest counts (a request sent again).
//
// No clock reading crosses processes: the report is the time elapsed since at on this process's
// monotonic clock, which the backend subtracts from its own now. The network delay of the report can
// only make the recorded start later than the true one.
func (l *Lease) Started(at time.Time) {
	l.mu.Lock()
	if at.After(l.began) {
		l.began = at
	}
	l.mu.Unlock()
}

func (l *Lease) startedLocked() started { return started{at: l.began, delay: l.delay} }

// Expires returns the local time the lease runs out unless refreshed.
func (l *Lease) Expires() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.expires
}

// Release gives the slot back (one backend call). Releasing twice, or after the lease ran out, is
// harmless: the backend ignores it and it cannot free another holder's slot.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	if l.released {
		l.mu.Unlock()
		return nil
	}
	l.released = true
	if l.timer != nil {
		l.timer.Stop()
	}
	st := l.startedLocked()
	l.mu.Unlock()
	if err := l.s.st.leave(ctx, l.key, l.id, l.token, st); err != nil {
		return fmt.Errorf("%w: release %q: %w", ErrUnavailable, l.key, err)
	}
	return nil
}

// scheduleLocked arms the next refresh two thirds of the way to expiry.
func (l *Lease) scheduleLocked(now time.Time) {
	left := l.expires.Sub(now)
	if left <= 0 {
		l.loseLocked()
		return
	}
	// Retries after a failed refresh come at least 10ms apart, not ever faster towards expiry.
	l.timer = time.AfterFunc(max(left*2/3, min(left, 10*time.Millisecond)), l.refresh)
}

func (l *Lease) refresh() {
	l.mu.Lock()
	if l.released {
		l.mu.Unlock()
		return
	}
	st, expires := l.startedLocked(), l.expires
	l.mu.Unlock()
	ctx, cancel := context.WithDeadline(context.Background(), expires)
	left, err := l.s.st.refresh(ctx, l.key, l.id, l.token, st)
	cancel()
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return
	}
	switch {
	case errors.Is(err, errLost):
		l.loseLocked()
	case err != nil: // backend trouble: keep trying until the lease runs out
		l.scheduleLocked(now)
	default:
		l.expires = now.Add(left)
		l.scheduleLocked(now)
	}
}

func (l *Lease) loseLocked() { l.lose() }
