package semaphore

import (
	"context"
	"time"
)

// Hooks for the external tests: the raw store operations, so a test can replay a script call
// (a retry after a lost reply) or hold a grant without the automatic refresh.

type RawGrant struct {
	Status  int // 0 queued, 1 granted, 2 full
	Token   int64
	Wait    time.Duration
	TTL     time.Duration
	Recheck time.Duration
}

func (s *Semaphore) RawAcquire(ctx context.Context, key, rid string, l Limits) (RawGrant, error) {
	r, err := s.st.acquire(ctx, key, rid, l)
	return RawGrant{Status: int(r.status), Token: r.grant.token, Wait: r.grant.wait, TTL: r.grant.ttl, Recheck: r.recheck}, err
}

func (s *Semaphore) RawLeave(ctx context.Context, key, rid string, token int64) error {
	return s.st.leave(ctx, key, rid, token, started{})
}

func (s *Semaphore) RawRefresh(ctx context.Context, key, rid string, token int64) (time.Duration, error) {
	return s.st.refresh(ctx, key, rid, token, started{})
}

var ErrLost = errLost

// LocalKeys reports how many keys an in-process semaphore holds, -1 for another backend.
func (s *Semaphore) LocalKeys() int {
	if ls, ok := s.st.(*localStore); ok {
		return ls.keyCount()
	}
	return -1
}

func (s *Semaphore) Prefix() string { return s.opts.Prefix }

// RequestID is the lease's request id, which the API keeps to itself.
func (l *Lease) RequestID() string { return l.id }
