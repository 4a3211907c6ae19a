package robots

import (
	"bytes"
	"compress/flate"
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// CacheOptions configure a Cache. Zero values take the defaults.
type CacheOptions struct {
	Store     Store         // the cache shared with other processes, and its fetch claims; nil for none
	MaxBytes  int           // budget of the local cache; default 64 MiB
	ClaimWait time.Duration // how long a loser of the fetch claim waits for the winner; default the fetch timeout + 1s
	Poll      time.Duration // how often a waiting loser looks for the winner's result; default 50ms
	// MaxFetches bounds the robots.txt fetches in flight from this cache (each holds up to a
	// response head and MaxSize of body); default 8. Lookups beyond it wait their turn.
	MaxFetches int
	// OnPanic, when set, is told of a panic recovered in a lookup (for a counter); the lookup
	// answers Unreachable with ErrInternal, cached like a failed fetch.
	OnPanic func(any)
}

// ErrInternal: a lookup failed on a bug of this package (a recovered panic), not on the site.
var ErrInternal = errors.New("robots: internal error")

// Cache holds robots.txt results: an LRU in this process in front of an optional Store shared with
// other processes, so each host's robots.txt is fetched once per TTL by all of them. On a miss in
// both, the process that takes the store's claim fetches; the others wait for its result, or after
// ClaimWait fetch themselves. Within a process there is one lookup per host at a time. A Cache is
// safe for concurrent use.
type Cache struct {
	fetch      func(ctx context.Context, base string) Result
	failureTTL time.Duration
	opts       CacheOptions
	fetches    chan struct{} // a token per fetch in flight

	mu       sync.Mutex
	lru      *list.List // of *entry, most recent first
	byBase   map[string]*list.Element
	bytes    int
	inflight map[string]*call
}

type entry struct {
	base     string
	res      Result
	expires  time.Time
	size     int
	failures int // consecutive Unreachable results for this host
}

// maxFailureTTL caps the backoff of a host whose robots.txt keeps failing.
const maxFailureTTL = time.Hour

type call struct {
	done chan struct{}
	res  Result
}

// NewCache returns a cache that fetches with f (nil: a zero Fetcher).
func NewCache(f *Fetcher, opts CacheOptions) *Cache {
	if f == nil {
		f = &Fetcher{}
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 64 << 20
	}
	if opts.ClaimWait <= 0 {
		opts.ClaimWait = f.defaults().timeout + time.Second
	}
	if opts.Poll <= 0 {
		opts.Poll = 50 * time.Millisecond
	}
	if opts.MaxFetches <= 0 {
		opts.MaxFetches = 8
	}
	return &Cache{fetch: f.Fetch, failureTTL: f.defaults().failureTTL, opts: opts, fetches: make(chan struct{}, opts.MaxFetches),
		lru: list.New(), byBase: map[string]*list.Element{}, inflight: map[string]*call{}}
}

// Get returns base's robots.txt result ("scheme://host[:port]"), from cache when fresh. It never
// fails: when ctx ends first, the result is Unreachable with ctx's error (and is not cached), and
// the lookup goes on for the callers still waiting. Each caller gets its own copy of the Result;
// the Rules it points to are shared and read-only.
func (c *Cache) Get(ctx context.Context, base string) Result {
	c.mu.Lock()
	failures := 0
	if el, ok := c.byBase[base]; ok {
		e := el.Value.(*entry)
		if time.Now().Before(e.expires) {
			c.lru.MoveToFront(el)
			c.mu.Unlock()
			return e.res
		}
		failures = e.failures
		c.removeLocked(el)
	}
	if cl, ok := c.inflight[base]; ok { // one lookup per host per process
		c.mu.Unlock()
		return c.await(ctx, cl)
	}
	cl := &call{done: make(chan struct{})}
	c.inflight[base] = cl
	c.mu.Unlock()

	// The lookup is shared by every caller and cached, so it must not fail because the caller that
	// started it went away: it runs detached, bounded by the fetch timeout and ClaimWait.
	go c.lookup(context.WithoutCancel(ctx), base, failures, cl)
	return c.await(ctx, cl)
}

// lookup loads base for cl and caches the result. (A closure in Get would move failures to the
// heap on every call, cache hits included.)
func (c *Cache) lookup(ctx context.Context, base string, failures int, cl *call) {
	res, ttl := c.loadRecovered(ctx, base, failures)
	c.mu.Lock()
	delete(c.inflight, base)
	if res.Status == Unreachable {
		failures++
	} else {
		failures = 0
	}
	c.putLocked(base, res, ttl, failures)
	c.mu.Unlock()
	cl.res = res
	close(cl.done)
}

// await waits for an in-flight lookup, or returns an Unreachable result with ctx's error.
func (c *Cache) await(ctx context.Context, cl *call) Result {
	select {
	case <-cl.done:
		return cl.res
	case <-ctx.Done():
		return Result{Status: Unreachable, Rules: &Rules{}, Err: ctx.Err()}
	}
}

// Len reports how many hosts the local cache holds, and their estimated bytes.
func (c *Cache) Len() (hosts, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len(), c.bytes
}

// loadRecovered is load behind the recover boundary of the detached lookup: a panic there (on a
// site's input, in a hook) becomes an Unreachable result, not the end of the process.
func (c *Cache) loadRecovered(ctx context.Context, base string, failures int) (res Result, ttl time.Duration) {
	defer func() {
		if v := recover(); v != nil {
			ttl = min(c.failureTTL<<min(failures, 20), max(c.failureTTL, maxFailureTTL))
			res = Result{Status: Unreachable, Rules: &Rules{}, TTL: ttl, Err: fmt.Errorf("%w: %v", ErrInternal, v)}
			if c.opts.OnPanic != nil {
				c.opts.OnPanic(v)
			}
		}
	}()
	return c.load(ctx, base, failures)
}

// load finds base's result in the store, or fetches it (once for all the store's users), and
// returns it with the time it has left to live. failures counts this host's consecutive failed
// fetches: each one doubles how long the next failure is cached, up to maxFailureTTL.
func (c *Cache) load(ctx context.Context, base string, failures int) (Result, time.Duration) {
	fetch := func() Result {
		c.fetches <- struct{}{}
		defer func() { <-c.fetches }()
		res := c.fetch(ctx, base)
		if res.Status == Unreachable {
			res.TTL = min(res.TTL<<min(failures, 20), max(res.TTL, maxFailureTTL))
		}
		return res
	}
	st := c.opts.Store
	if st == nil {
		res := fetch()
		return res, res.TTL
	}
	if res, ok := c.shared(ctx, base); ok {
		return res, res.TTL
	}
	won, err := st.Claim(ctx, base, c.opts.ClaimWait)
	if err == nil && !won {
		deadline := time.Now().Add(c.opts.ClaimWait)
		for time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return Result{Status: Unreachable, Rules: &Rules{}, Err: ctx.Err()}, 0
			case <-time.After(c.opts.Poll):
			}
			if res, ok := c.shared(ctx, base); ok {
				return res, res.TTL
			}
		}
	}
	// Claim won, claim holder too slow, or the store unavailable: fetch ourselves.
	res := fetch()
	if v, err := encode(res); err == nil && res.TTL > 0 {
		_ = st.Save(ctx, base, v, res.TTL)
	}
	if won {
		_ = st.Unclaim(ctx, base)
	}
	return res, res.TTL
}

// shared reads a result another process stored; its TTL is the time the stored value has left
// (a minute when the store does not know).
func (c *Cache) shared(ctx context.Context, base string) (Result, bool) {
	v, ttl, err := c.opts.Store.Load(ctx, base)
	if err != nil || v == "" {
		return Result{}, false
	}
	res, err := decode(v)
	if err != nil {
		return Result{}, false
	}
	if ttl <= 0 {
		ttl = time.Minute
	}
	res.TTL = ttl
	return res, true
}

func (c *Cache) putLocked(base string, res Result, ttl time.Duration, failures int) {
	if ttl <= 0 {
		return
	}
	e := &entry{base: base, res: res, expires: time.Now().Add(ttl), failures: failures}
	el := c.lru.PushFront(e)
	if res.Rules != nil {
		// Later lookups merge the file's groups per agent (bounded); the entry's size follows.
		grow := func(n int) {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.byBase[base] == el {
				e.size += n
				c.bytes += n
				c.evictLocked()
			}
		}
		res.Rules.memo.grow.Store(&grow)
	}
	e.size = res.Rules.Size() + allocSize(len(base)) + entryOverhead
	if e.size > c.opts.MaxBytes {
		c.lru.Remove(el)
		return
	}
	c.byBase[base] = el
	c.bytes += e.size
	c.evictLocked()
}

// entryOverhead is the heap of a cache entry beyond its rules and key: the entry, its list
// element, its map slot and its Result (measured by BenchmarkCacheMemory100k).
const entryOverhead = 256

func (c *Cache) evictLocked() {
	for c.bytes > c.opts.MaxBytes && c.lru.Len() > 0 {
		c.removeLocked(c.lru.Back())
	}
}

func (c *Cache) removeLocked(el *list.Element) {
	e := c.lru.Remove(el).(*entry)
	delete(c.byBase, e.base)
	c.bytes -= e.size
}

// The shared form of a result: "v2 STATUS CODE\n" and, when Fetched, the rules as MarshalText
// writes them, deflated. MarshalText is lossless (normal-form patterns, exact delays) and is read
// back whole, so every process reading it decides every path as the one that fetched the file; v1, which
// Parse cut at MaxSize, is not read.
//
// The stored value is not trusted to be small: values of maxEncoded bytes or more are ignored
// (RedisStore reads no more) and at most maxTextSize bytes are inflated from one, so a hostile value
// cannot exhaust memory (the store stays a trust boundary for what the value says).
const maxEncoded = MaxStoredSize

func encode(r Result) (string, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "v2 %d %d\n", r.Status, r.Code)
	if r.Status == Fetched {
		text, err := r.Rules.MarshalText()
		if err != nil {
			return "", err
		}
		w, _ := deflaters.Get().(*flate.Writer)
		if w == nil {
			var err error
			if w, err = flate.NewWriter(&b, flate.BestSpeed); err != nil {
				return "", err
			}
		} else {
			w.Reset(&b)
		}
		defer deflaters.Put(w)
		if _, err := w.Write(text); err != nil {
			return "", err
		}
		if err := w.Close(); err != nil {
			return "", err
		}
	}
	if b.Len() >= maxEncoded {
		return "", ErrTooLarge
	}
	return b.String(), nil
}

// deflaters keeps the compressors of encode, which each hold about a megabyte of state.
var deflaters sync.Pool

var errFormat = errors.New("robots: cached entry in an unknown format")

func decode(v string) (Result, error) {
	if len(v) >= maxEncoded {
		return Result{}, ErrTooLarge
	}
	head, body, ok := strings.Cut(v, "\n")
	f := strings.Fields(head)
	if !ok || len(f) != 3 || f[0] != "v2" {
		return Result{}, errFormat
	}
	st, err1 := strconv.Atoi(f[1])
	code, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil || st < int(Fetched) || st > int(Unreachable) || code < 0 || code > 999 {
		return Result{}, errFormat
	}
	res := Result{Status: Status(st), Code: code, Rules: &Rules{}}
	if res.Status != Fetched {
		if body != "" {
			return Result{}, errFormat
		}
		return res, nil
	}
	text, err := io.ReadAll(io.LimitReader(flate.NewReader(strings.NewReader(body)), maxTextSize+1))
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", errFormat, err)
	}
	if err := res.Rules.UnmarshalText(text); err != nil {
		return Result{}, err
	}
	return res, nil
}
