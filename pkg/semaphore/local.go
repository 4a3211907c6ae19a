package semaphore

import (
	"context"
	"sync"
	"time"
)

// NewLocal returns a Semaphore held in this process, for a single process without Redis. It has
// the Redis backend's semantics and guarantees; its clock is this process's monotonic clock.
func NewLocal(opts Options) (*Semaphore, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	w := newWaiters()
	ls := &localStore{opts: opts, keys: make(map[string]*localKey), deliver: w.deliver, stop: make(chan struct{})}
	go ls.sweep()
	return &Semaphore{opts: opts, st: ls, waiters: w, inProcess: true}, nil
}

type localStore struct {
	opts    Options
	deliver func(rid string, g grant)
	stop    chan struct{}
	once    sync.Once

	mu   sync.Mutex
	keys map[string]*localKey
}

type localHolder struct {
	token        int64
	limit        int
	start, until time.Time
}

type localWaiter struct {
	rid      string
	limits   Limits
	deadline time.Time
}

// localKey mirrors the Redis keys of one semaphore key (see lua/common.lua).
type localKey struct {
	holders    map[string]*localHolder
	queue      []*localWaiter // arrival order
	tok        int64
	next, last time.Time // gate; last start (zero: none)
	lastLimit  int
	lastDelay  time.Duration
	bo         time.Time // backoff until
	level      int
	lastBID    string
}

// open returns key's state with expired holders and waiters purged, and the time it was read at.
// The caller holds s.mu.
func (s *localStore) open(key string) (*localKey, time.Time) {
	now := time.Now()
	k := s.key(key)
	k.purge(now)
	return k, now
}

func (s *localStore) key(k string) *localKey {
	lk := s.keys[k]
	if lk == nil {
		lk = &localKey{holders: make(map[string]*localHolder)}
		s.keys[k] = lk
	}
	return lk
}

func (k *localKey) purge(now time.Time) {
	for rid, h := range k.holders {
		if !h.until.After(now) {
			delete(k.holders, rid)
		}
	}
	q := k.queue[:0]
	for _, w := range k.queue {
		if w.deadline.After(now) {
			q = append(q, w)
		}
	}
	clear(k.queue[len(q):])
	k.queue = q
}

func (k *localKey) room(limit int) bool {
	n := len(k.holders)
	if n >= limit {
		return false
	}
	for _, h := range k.holders {
		if n >= h.limit {
			return false
		}
	}
	return true
}

func (k *localKey) grant(rid string, l Limits, ttl time.Duration, now time.Time) grant {
	start := now
	if k.next.After(start) {
		start = k.next
	}
	if !k.last.IsZero() && k.last.Add(l.Delay).After(start) {
		start = k.last.Add(l.Delay)
	}
	k.tok++
	k.next, k.last, k.lastLimit, k.lastDelay = start.Add(l.Delay), start, l.Concurrency, l.Delay
	h := &localHolder{token: k.tok, limit: l.Concurrency, start: start, until: start.Add(ttl)}
	k.holders[rid] = h
	return h.grantAt(now)
}

// began moves the gate after a holder's actual start (see Lease.Started): the clock is the same
// monotonic one, so the instant is exact.
func (k *localKey) began(st started) {
	if st.at.IsZero() {
		return
	}
	if st.at.After(k.last) {
		k.last = st.at
	}
	if next := st.at.Add(st.delay); next.After(k.next) {
		k.next = next
	}
}

func (h *localHolder) grantAt(now time.Time) grant {
	return grant{token: h.token, scheduled: h.start, wait: h.start.Sub(now), ttl: h.until.Sub(now)}
}

// pump hands free slots to the head of the queue, in arrival order.
func (s *localStore) pump(k *localKey, now time.Time) {
	for len(k.queue) > 0 {
		w := k.queue[0]
		if !k.room(w.limits.Concurrency) {
			return
		}
		k.queue[0] = nil
		k.queue = k.queue[1:]
		g := k.grant(w.rid, w.limits, min(s.opts.Lease, s.opts.WaiterTTL), now)
		s.deliver(w.rid, g)
	}
}

func (k *localKey) recheck(now time.Time, heartbeat time.Duration) time.Duration {
	d := heartbeat
	for _, h := range k.holders {
		d = min(d, h.until.Sub(now)+time.Millisecond)
	}
	return max(d, time.Millisecond)
}

func (s *localStore) acquire(_ context.Context, key, rid string, l Limits) (reply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, now := s.open(key)
	if h := k.holders[rid]; h != nil {
		return reply{status: granted, grant: h.grantAt(now)}, nil
	}
	for _, w := range k.queue {
		if w.rid == rid {
			w.deadline = now.Add(s.opts.WaiterTTL)
			s.pump(k, now)
			if h := k.holders[rid]; h != nil {
				return reply{status: granted, grant: h.grantAt(now)}, nil
			}
			return reply{status: queued, recheck: k.recheck(now, s.opts.Heartbeat)}, nil
		}
	}
	s.pump(k, now)
	if len(k.queue) == 0 && k.room(l.Concurrency) {
		g := k.grant(rid, l, s.opts.Lease, now)
		return reply{status: granted, grant: g}, nil
	}
	if len(k.queue) >= s.opts.MaxQueue {
		return reply{status: full}, nil
	}
	k.queue = append(k.queue, &localWaiter{rid: rid, limits: l, deadline: now.Add(s.opts.WaiterTTL)})
	return reply{status: queued, recheck: k.recheck(now, s.opts.Heartbeat)}, nil
}

func (s *localStore) leave(_ context.Context, key, rid string, token int64, st started) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, now := s.open(key)
	if h := k.holders[rid]; h != nil {
		if token != 0 && h.token != token {
			return nil // fenced
		}
		delete(k.holders, rid)
		k.began(st)
	} else {
		for i, w := range k.queue {
			if w.rid == rid {
				k.queue = append(k.queue[:i], k.queue[i+1:]...)
				break
			}
		}
	}
	s.pump(k, now)
	s.dropIfIdle(key, k, now)
	return nil
}

func (s *localStore) refresh(_ context.Context, key, rid string, token int64, st started) (time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, now := s.open(key)
	h := k.holders[rid]
	if h == nil || h.token != token {
		s.dropIfIdle(key, k, now)
		return 0, errLost
	}
	k.began(st)
	h.until = now.Add(s.opts.Lease)
	if h.start.After(now) {
		h.until = h.start.Add(s.opts.Lease)
	}
	return h.until.Sub(now), nil
}

func (s *localStore) backoff(_ context.Context, key, id string, retryAfter time.Duration) (time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	k := s.key(key)
	if k.lastBID == id {
		return max(0, k.bo.Sub(now)), nil
	}
	if k.bo.Add(s.opts.MaxBackoff).Before(now) {
		k.level = 0
	}
	k.level++
	d := retryAfter
	if d <= 0 {
		d = s.opts.BackoffBase << min(k.level-1, 40)
		if d <= 0 { // overflow
			d = s.opts.MaxBackoff
		}
	}
	d = min(d, s.opts.MaxBackoff)
	until := now.Add(d)
	if until.After(k.bo) {
		k.bo = until
	}
	if until.After(k.next) {
		k.next = until
	}
	k.lastBID = id
	return d, nil
}

func (s *localStore) state(_ context.Context, key string) (State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	k := s.keys[key]
	if k == nil {
		return State{}, nil
	}
	st := State{Limit: k.lastLimit, Delay: k.lastDelay, NextStart: max(0, k.next.Sub(now)),
		Backoff: max(0, k.bo.Sub(now)), BackoffLevel: k.level}
	for _, h := range k.holders {
		if h.until.After(now) {
			st.Holders++
		}
	}
	for _, w := range k.queue {
		if w.deadline.After(now) {
			st.Waiters++
		}
	}
	return st, nil
}

// dropIfIdle forgets a key past its horizon, as the Redis keys expire.
func (s *localStore) dropIfIdle(key string, k *localKey, now time.Time) {
	if len(k.holders) == 0 && len(k.queue) == 0 && !k.next.After(now) && !k.bo.After(now) {
		delete(s.keys, key)
	}
}

// sweep drops idle keys that nobody touches any more, so memory follows the active keys.
func (s *localStore) sweep() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		now := time.Now()
		for key, k := range s.keys {
			k.purge(now)
			s.pump(k, now)
			s.dropIfIdle(key, k, now)
		}
		s.mu.Unlock()
	}
}

// keyCount reports how many keys the store holds (tests: idle keys leave nothing behind).
func (s *localStore) keyCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys)
}

func (s *localStore) close() error {
	s.once.Do(func() { close(s.stop) })
	return nil
}
