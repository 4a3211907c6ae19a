package semaphore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"
)

var (
	// ErrQueueFull is returned when a key already has Options.MaxQueue waiters.
	ErrQueueFull = errors.New("semaphore: queue full")
	// ErrUnavailable wraps errors of the backend (Redis unreachable, timeouts).
	ErrUnavailable = errors.New("semaphore: backend unavailable")
	// ErrInvalid is returned for limits or options out of range.
	ErrInvalid = errors.New("semaphore: invalid argument")
)

// Limits are what one request asks of its key.
type Limits struct {
	Concurrency int           // leases at once, at least 1
	Delay       time.Duration // minimum gap between consecutive starts, 0 for none
}

// Options configure a Semaphore. Zero values take the defaults.
type Options struct {
	Lease       time.Duration // a holder's lease, renewed while held; default 30s
	Heartbeat   time.Duration // how often a waiter re-announces itself; default 1s
	WaiterTTL   time.Duration // a waiter not heard from this long leaves the queue; default 3 x Heartbeat
	MaxQueue    int           // waiters per key at most; default 1000
	BackoffBase time.Duration // first step of exponential backoff; default 1s
	MaxBackoff  time.Duration // cap of any backoff; default 10m
	Prefix      string        // key prefix in Redis; default "crawlpolite"
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.Lease, 30*time.Second)
	def(&o.Heartbeat, time.Second)
	def(&o.WaiterTTL, 3*o.Heartbeat)
	def(&o.BackoffBase, time.Second)
	def(&o.MaxBackoff, 10*time.Minute)
	if o.MaxQueue == 0 {
		o.MaxQueue = 1000
	}
	if o.Prefix == "" {
		o.Prefix = "crawlpolite"
	}
	return o
}

// Validate reports options that cannot work.
func (o Options) Validate() error {
	o = o.withDefaults()
	switch {
	case o.Lease < 10*time.Millisecond:
		return fmt.Errorf("%w: lease %v below 10ms", ErrInvalid, o.Lease)
	case o.Heartbeat < time.Millisecond:
		return fmt.Errorf("%w: heartbeat %v below 1ms", ErrInvalid, o.Heartbeat)
	case o.WaiterTTL < 2*o.Heartbeat:
		return fmt.Errorf("%w: waiter TTL %v must be at least twice the heartbeat %v", ErrInvalid, o.WaiterTTL, o.Heartbeat)
	case o.MaxQueue < 1 || o.BackoffBase <= 0 || o.MaxBackoff < o.BackoffBase:
		return fmt.Errorf("%w: max queue, backoff base and max backoff must be positive and ordered", ErrInvalid)
	}
	return nil
}

// State is a key's live state, for observability.
type State struct {
	Holders      int           // leases held now
	Waiters      int           // requests queued
	Limit        int           // concurrency of the last grant
	Delay        time.Duration // delay of the last grant
	NextStart    time.Duration // until the gate opens (0: open)
	Backoff      time.Duration // backoff left (0: none)
	BackoffLevel int           // consecutive backoffs
}

// grant is a slot given to a request: when it may start and how long its lease lasts, both relative
// to when the backend decided, plus the backend's own clock reading of the start.
type grant struct {
	token     int64
	scheduled time.Time     // start on the backend's clock, for observability
	wait      time.Duration // until the start
	ttl       time.Duration // until the lease runs out
}

type status int

const (
	queued status = iota
	granted
	full
)

// reply is the outcome of one acquire or heartbeat.
type reply struct {
	status  status
	grant   grant
	recheck time.Duration // queued: worth asking again after this long
}

// started is a holder's actual start as it reports it on release and refresh: the local instant
// its work began (zero: not begun, or unknown) and its delay. The backend moves the key's gate to at
// least at + delay (see Lease.Started).
type started struct {
	at    time.Time
	delay time.Duration
}

// store is one backend: each method is one atomic operation (one script on Redis).
type store interface {
	acquire(ctx context.Context, key, rid string, l Limits) (reply, error)
	leave(ctx context.Context, key, rid string, token int64, st started) error
	refresh(ctx context.Context, key, rid string, token int64, st started) (time.Duration, error)
	backoff(ctx context.Context, key, id string, retryAfter time.Duration) (time.Duration, error)
	state(ctx context.Context, key string) (State, error)
	close() error
}

// errLost is returned by refresh when the lease is gone (expired, or fenced).
var errLost = errors.New("semaphore: lease lost")

// Semaphore grants leases on keys. It is safe for concurrent use.
type Semaphore struct {
	opts    Options
	st      store
	waiters *waiters
	mu      sync.Mutex // guards closed and leaving.Add against Close's Wait
	closed  bool
	leaving sync.WaitGroup // abandon calls in flight; Close waits for them
	// leaveCtx bounds the abandon calls' retries; Close cancels it a waiter TTL after it began.
	leaveCtx    context.Context
	stopLeaving context.CancelFunc
	inProcess   bool
}

// InProcess reports whether the backend lives in this process (NewLocal). Its calls then never
// wait on a network and cost less than starting a goroutine, so a caller handed a Semaphore it did
// not construct (one of a Redis semaphore and its in-process fallback, say) can release inline
// what it would otherwise release in the background.
func (s *Semaphore) InProcess() bool { return s.inProcess }

// Acquire waits for a slot on key and returns its lease. It returns ErrQueueFull when the key's queue
// is full, ctx's error when ctx ends first (leaving the queue), and an error wrapping ErrUnavailable
// when the backend fails. The caller must Release the lease, and must not start before Lease.Start
// (Lease.Wait sleeps until then).
func (s *Semaphore) Acquire(ctx context.Context, key string, l Limits) (*Lease, error) {
	if l.Concurrency < 1 || l.Delay < 0 {
		return nil, fmt.Errorf("%w: limits %+v", ErrInvalid, l)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rid := newID()
	pushed := s.waiters.add(rid) // before the first call, so a push cannot arrive unheard
	defer s.waiters.remove(rid)
	r, err := s.st.acquire(ctx, key, rid, l)
	for {
		if err != nil {
			s.abandon(key, rid)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("%w: acquire %q: %w", ErrUnavailable, key, err)
		}
		switch r.status {
		case granted:
			return s.newLease(key, rid, l, r.grant, time.Now()), nil
		case full:
			return nil, fmt.Errorf("%w: %q", ErrQueueFull, key)
		}
		t := time.NewTimer(min(r.recheck, s.opts.Heartbeat))
		select {
		case g := <-pushed:
			t.Stop()
			return s.newLease(key, rid, l, g, time.Now()), nil
		case <-t.C:
			r, err = s.st.acquire(ctx, key, rid, l)
		case <-ctx.Done():
			t.Stop()
			s.abandon(key, rid)
			return nil, ctx.Err()
		}
	}
}

// abandon takes a request that will not be used out of the queue, or gives back the slot it may
// have been granted meanwhile, without waiting. If it fails, the waiter TTL or the lease frees it.
//
// The leave is retried for up to a lease (the backend retries until its context ends): a request that
// gave up while Redis hung may still be queued, or granted, by its own call when Redis resumes and
// runs what it buffered, and that grant would hold a slot for a whole lease. Close cuts the retries
// short after a waiter TTL.
func (s *Semaphore) abandon(key, rid string) {
	leave := func(parent context.Context) {
		ctx, cancel := context.WithTimeout(parent, max(s.opts.WaiterTTL, s.opts.Lease))
		defer cancel()
		_ = s.st.leave(ctx, key, rid, 0, started{})
	}
	s.mu.Lock()
	if s.closed { // Close is waiting or done: leave now rather than behind its back
		s.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.WaiterTTL)
		defer cancel()
		leave(ctx)
		return
	}
	if s.stopLeaving == nil {
		s.leaveCtx, s.stopLeaving = context.WithCancel(context.Background())
	}
	lctx := s.leaveCtx
	s.leaving.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.leaving.Done()
		leave(lctx)
	}()
}

// Backoff pushes key's next start later for every client: by retryAfter when positive (an upstream
// Retry-After), else by exponential backoff (BackoffBase doubling per consecutive call), capped by
// MaxBackoff. It returns the delay applied.
func (s *Semaphore) Backoff(ctx context.Context, key string, retryAfter time.Duration) (time.Duration, error) {
	d, err := s.st.backoff(ctx, key, newID(), retryAfter)
	if err != nil {
		return 0, fmt.Errorf("%w: backoff %q: %w", ErrUnavailable, key, err)
	}
	return d, nil
}

// State reads key's live state.
func (s *Semaphore) State(ctx context.Context, key string) (State, error) {
	st, err := s.st.state(ctx, key)
	if err != nil {
		return State{}, fmt.Errorf("%w: state %q: %w", ErrUnavailable, key, err)
	}
	return st, nil
}

// Close waits for abandoned requests to leave their queues, then stops the semaphore's background
// work. Leases still held run out by themselves. Closing again does nothing.
func (s *Semaphore) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	stop := s.stopLeaving
	s.mu.Unlock()
	if stop != nil {
		t := time.AfterFunc(s.opts.WaiterTTL, stop)
		defer t.Stop()
		defer stop()
	}
	s.leaving.Wait()
	return s.st.close()
}

// newID returns a random request id: unguessable, so only its owner can release its grant.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
