package main_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The fault tests run sidecars under a steady crawl and break Redis under them. The origins are the
// observers: each counts, per second of the run, the requests that started and the most in flight.

// faultOrigin is a test site that holds each page request for hold and records, per second since
// t0, how many requests started and the most it held at once.
type faultOrigin struct {
	*httptest.Server
	hold time.Duration
	t0   time.Time

	mu       sync.Mutex
	inFlight int
	maxAll   int
	starts   []int // per second
	maxIn    []int // per second
	began    []time.Time
	byName   map[string][]int // starts per second by the crawl's name (politeCrawl's /page/NAME/...)
}

func newFaultOrigin(t *testing.T, hold time.Duration) *faultOrigin {
	t.Helper()
	o := &faultOrigin{hold: hold, t0: time.Now()}
	o.Server = httptest.NewServer(http.HandlerFunc(o.serve))
	t.Cleanup(o.Close)
	return o
}

func (o *faultOrigin) bucket(n *[]int) *int {
	s := int(time.Since(o.t0) / time.Second)
	for len(*n) <= s {
		*n = append(*n, 0)
	}
	return &(*n)[s]
}

func (o *faultOrigin) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/robots.txt" {
		_, _ = io.WriteString(w, "User-agent: *\nAllow: /\n")
		return
	}
	o.mu.Lock()
	o.inFlight++
	o.maxAll = max(o.maxAll, o.inFlight)
	*o.bucket(&o.starts)++
	o.began = append(o.began, time.Now())
	if name, _, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/page/"), "/"); ok {
		if o.byName == nil {
			o.byName = map[string][]int{}
		}
		n := o.byName[name]
		*o.bucket(&n)++
		o.byName[name] = n
	}
	m := o.bucket(&o.maxIn)
	*m = max(*m, o.inFlight)
	o.mu.Unlock()
	select {
	case <-time.After(o.hold):
	case <-r.Context().Done():
	}
	o.mu.Lock()
	o.inFlight--
	o.mu.Unlock()
	_, _ = io.WriteString(w, "page\n")
}

func (o *faultOrigin) host() string { return strings.TrimPrefix(o.URL, "http://") }

// reset restarts the clock: what was seen so far (warm-up) is forgotten.
func (o *faultOrigin) reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.t0, o.maxAll, o.starts, o.maxIn, o.began, o.byName = time.Now(), 0, nil, nil, nil, nil
}

// seenBy is how many requests of the crawl named name started in seconds [from, to).
func (o *faultOrigin) seenBy(name string, from, to int) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for s := from; s < to && s < len(o.byName[name]); s++ {
		n += o.byName[name][s]
	}
	return n
}

// firstStartAfter is when the first page request at or after at started, zero for none.
func (o *faultOrigin) firstStartAfter(at time.Time) time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, b := range o.began {
		if !b.Before(at) {
			return b
		}
	}
	return time.Time{}
}

// seen returns starts and max in flight for seconds [from, to) of the run, and the max over the whole run.
func (o *faultOrigin) seen(from, to int) (starts, maxIn, maxAll int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for s := from; s < to && s < len(o.starts); s++ {
		starts += o.starts[s]
		maxIn = max(maxIn, o.maxIn[s])
	}
	return starts, maxIn, o.maxAll
}

// perSecond returns the starts of every second so far, for logs.
func (o *faultOrigin) perSecond() []int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]int(nil), o.starts...)
}

// codeLog counts answers by status, per second since a start, over all the workers of a test.
type codeLog struct {
	mu    sync.Mutex
	t0    time.Time
	codes map[int][]int
	slow  time.Duration // the longest any answer took
	bare  int           // 503s without Retry-After
}

func newCodeLog() *codeLog { return &codeLog{t0: time.Now(), codes: map[int][]int{}} }

func (c *codeLog) add(code int, retryAfter string, took time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if code == http.StatusServiceUnavailable && retryAfter == "" {
		c.bare++
	}
	s := int(time.Since(c.t0) / time.Second)
	n := c.codes[code]
	for len(n) <= s {
		n = append(n, 0)
	}
	n[s]++
	c.codes[code] = n
	c.slow = max(c.slow, took)
}

// slowest is the longest any answer took, and how many 503s came without Retry-After.
func (c *codeLog) slowest() (time.Duration, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.slow, c.bare
}

// count is how many answers with code came in seconds [from, to).
func (c *codeLog) count(code, from, to int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for s := from; s < to && s < len(c.codes[code]); s++ {
		n += c.codes[code][s]
	}
	return n
}

// total is how many answers came, of any code.
func (c *codeLog) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, per := range c.codes {
		for _, k := range per {
			n += k
		}
	}
	return n
}

func (c *codeLog) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for code, n := range c.codes {
		fmt.Fprintf(&b, "%d: %v\n", code, n)
	}
	return b.String()
}

// politeCrawl runs workers fetching base through c until ctx ends. A worker that gets an answer
// other than 200, or no answer, pauses for a tenth of a second before its next request, as a
// crawler's retry would, instead of spinning the CPU the other processes of the test share.
func politeCrawl(ctx context.Context, c *http.Client, base, name string, workers int, log *codeLog) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/page/%s/%d/%d", base, name, w, i), nil)
				req.Header.Set("User-Agent", "testbot/1.0")
				began := time.Now()
				resp, err := c.Do(req)
				code, ra := 0, ""
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					code, ra = resp.StatusCode, resp.Header.Get("Retry-After")
				}
				if ctx.Err() != nil {
					return
				}
				log.add(code, ra, time.Since(began))
				if code != http.StatusOK {
					select {
					case <-time.After(100 * time.Millisecond):
					case <-ctx.Done():
					}
				}
			}
		}()
	}
	return &wg
}

// writeFaultPolicy writes a policy of limit in flight per host, no delay, robots.txt ignored (the
// fault tests observe the semaphore).
func writeFaultPolicy(t *testing.T, limit int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "policy.yaml")
	doc := fmt.Sprintf("defaults:\n  maxConcurrency: %d\n  minDelay: 0s\n  waitTimeout: 60s\n  robots: ignore\n", limit)
	if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// semKey is the Redis key holding host's hash tag, to ask the cluster which master serves it.
func semKey(host string) string { return "{" + host + "}" }

// checkWindow asserts that in seconds [from, to) o never held more than limit at once and served at
// least share of the throughput limit/hold allows, over every window of win seconds.
func checkWindow(t *testing.T, name string, o *faultOrigin, from, to, limit, win int, share float64) {
	t.Helper()
	allowed := float64(limit) / o.hold.Seconds()
	for s := from; s+win <= to; s += win {
		n, m, _ := o.seen(s, s+win)
		if m > limit {
			t.Errorf("%s: %d in flight in seconds %d-%d, limit %d", name, m, s, s+win, limit)
		}
		if r := float64(n) / float64(win); r < share*allowed {
			t.Errorf("%s: %.1f req/s in seconds %d-%d, below %.0f%% of the %.1f allowed", name, r, s, s+win, 100*share, allowed)
		}
	}
}
