package robots

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Status is what fetching a host's robots.txt established (RFC 9309 section 2.3.1).
type Status int

const (
	// Fetched: 2xx; the body's rules apply.
	Fetched Status = iota
	// Unavailable: 4xx other than 429, or too many redirects; the crawler may access everything.
	Unavailable
	// Unreachable: 5xx, 429, timeout or network error; the crawler must assume everything disallowed.
	Unreachable
)

func (s Status) String() string {
	switch s {
	case Fetched:
		return "fetched"
	case Unavailable:
		return "unavailable"
	}
	return "unreachable"
}

// Result is one host's robots.txt as fetched, with how long it may be cached. It is a value: a
// Cache hands each caller a copy, and the Rules it points to are never changed once parsed.
type Result struct {
	Status Status
	Rules  *Rules        // the parsed body when Fetched; empty otherwise
	TTL    time.Duration // cache lifetime
	Code   int           // last HTTP status, 0 when none was received
	Err    error         // why it is Unreachable, if not by status code
}

// For returns the group that applies to agent: the file's group when Fetched, a group allowing all when
// Unavailable, and one disallowing all (except /robots.txt) when Unreachable.
func (r Result) For(agent string) *Group {
	switch r.Status {
	case Fetched:
		return r.Rules.For(agent)
	case Unavailable:
		return allowAll
	}
	return disallowAll
}

var (
	allowAll    = &Group{}
	disallowAll = Parse([]byte("User-agent: *\nDisallow: /\n")).For("*")
)

// Turn is a turn from the politeness semaphore of the host a robots.txt request goes to.
type Turn interface {
	// Start waits until the request may start (the host's delay since the previous start).
	Start(ctx context.Context) error
	// Done ends the turn, once the response is read.
	Done()
}

// MaxHeaderBytes bounds a robots.txt response head, as MaxSize bounds its body.
const MaxHeaderBytes = 64 << 10

// Fetcher fetches robots.txt files. The zero value is usable: it fetches through
// http.DefaultTransport, with no gate. Set its fields before the first Fetch and do not change them
// while fetches are running; it is then safe for concurrent use.
type Fetcher struct {
	// Client sends the requests (http.DefaultTransport when nil); a crawler that guards where it
	// connects should pass the client its own requests use, as a robots.txt may redirect anywhere.
	// Its redirect policy is bypassed: the Fetcher follows redirects itself. When its Transport is
	// an *http.Transport without a head limit of at most MaxHeaderBytes, a copy with that limit is
	// used.
	Client *http.Client
	// Gate, when set, is asked for a turn before every request, the first and each redirect hop (a
	// redirect may point at another host, which is owed the same politeness). An error, from Gate or
	// the turn's Start, makes the result Unreachable with a TTL of 0: it is not cached.
	Gate         func(ctx context.Context, u *url.URL) (Turn, error)
	UserAgent    string        // sent as User-Agent
	Timeout      time.Duration // for the whole fetch, redirects included; default 10s
	FailureTTL   time.Duration // cache lifetime of an Unreachable result; default 5m
	MinTTL       time.Duration // bounds of the lifetime taken from Cache-Control; default 1h
	MaxTTL       time.Duration // default 24h (RFC 9309: no longer than 24 hours)
	MaxRedirects int           // default 5

	once   sync.Once
	client *http.Client // Client as used: head limit set, redirects not followed
}

// fetchSettings are a Fetcher's settings with the defaults applied.
type fetchSettings struct {
	timeout, failureTTL, minTTL, maxTTL time.Duration
	maxRedirects                        int
	userAgent                           string
	gate                                func(ctx context.Context, u *url.URL) (Turn, error)
}

func (f *Fetcher) defaults() fetchSettings {
	def := func(d, v time.Duration) time.Duration {
		if d <= 0 {
			return v
		}
		return d
	}
	s := fetchSettings{def(f.Timeout, 10*time.Second), def(f.FailureTTL, 5*time.Minute), def(f.MinTTL, time.Hour),
		def(f.MaxTTL, 24*time.Hour), f.MaxRedirects, f.UserAgent, f.Gate}
	if s.maxRedirects <= 0 {
		s.maxRedirects = 5
	}
	return s
}

// httpClient returns the client fetches use, made once from Client.
func (f *Fetcher) httpClient() *http.Client {
	f.once.Do(func() {
		c := http.Client{}
		if f.Client != nil {
			c = *f.Client
		}
		if c.Transport == nil {
			c.Transport = http.DefaultTransport
		}
		if t, ok := c.Transport.(*http.Transport); ok && (t.MaxResponseHeaderBytes <= 0 || t.MaxResponseHeaderBytes > MaxHeaderBytes) {
			t = t.Clone()
			t.MaxResponseHeaderBytes = MaxHeaderBytes
			c.Transport = t
		}
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		f.client = &c
	})
	return f.client
}

// Fetch retrieves base's /robots.txt (base is "scheme://host[:port]"). It never fails: every failure
// is a Result with status Unreachable or Unavailable, as RFC 9309 says how to treat it.
func (f *Fetcher) Fetch(ctx context.Context, base string) Result {
	c := f.defaults()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	client := f.httpClient()
	target := strings.TrimSuffix(base, "/") + "/robots.txt"
	for hop := 0; ; hop++ {
		res, next := c.get(ctx, client, target)
		if next == "" {
			return res
		}
		if hop == c.maxRedirects {
			// RFC 9309 2.3.1.2: after five consecutive redirects the file may be taken as unavailable.
			return Result{Status: Unavailable, Rules: &Rules{}, TTL: c.failureTTL, Code: res.Code,
				Err: fmt.Errorf("robots: more than %d redirects", c.maxRedirects)}
		}
		target = next
	}
}

// get makes one request: it returns a final result, or the next URL of a redirect.
func (c *fetchSettings) get(ctx context.Context, client *http.Client, target string) (Result, string) {
	unreachable := func(code int, err error) Result {
		return Result{Status: Unreachable, Rules: &Rules{}, TTL: c.failureTTL, Code: code, Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return unreachable(0, err), ""
	}
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	if c.gate != nil {
		turn, err := c.gate(ctx, req.URL)
		if err == nil {
			defer turn.Done()
			err = turn.Start(ctx)
		}
		if err != nil {
			res := unreachable(0, fmt.Errorf("robots: no turn for %s: %w", req.URL.Host, err))
			res.TTL = 0 // our own state, not the site's: not cached
			return res, ""
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		return unreachable(0, err), ""
	}
	defer resp.Body.Close()
	code := resp.StatusCode
	switch {
	case code >= 300 && code < 400 && code != http.StatusNotModified:
		loc, err := resp.Location()
		if err != nil {
			return Result{Status: Unavailable, Rules: &Rules{}, TTL: c.failureTTL, Code: code, Err: err}, ""
		}
		return Result{Code: code}, loc.String()
	case code >= 200 && code < 300:
		body, err := io.ReadAll(io.LimitReader(resp.Body, MaxSize))
		if err != nil && !errors.Is(err, io.EOF) {
			return unreachable(code, fmt.Errorf("robots: read body: %w", err)), ""
		}
		return Result{Status: Fetched, Rules: Parse(body), TTL: c.ttl(resp.Header), Code: code}, ""
	case code == http.StatusTooManyRequests || code >= 500:
		return unreachable(code, nil), ""
	case code >= 400:
		return Result{Status: Unavailable, Rules: &Rules{}, TTL: c.ttl(resp.Header), Code: code}, ""
	}
	return unreachable(code, fmt.Errorf("robots: unexpected status %d", code)), ""
}

// ttl reads Cache-Control max-age, bounded to [MinTTL, MaxTTL]; MaxTTL when absent.
func (c *fetchSettings) ttl(h http.Header) time.Duration {
	for _, d := range strings.Split(h.Get("Cache-Control"), ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(strings.ToLower(d)), "max-age="); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 && n < 1<<31 {
				return min(max(time.Duration(n)*time.Second, c.minTTL), c.maxTTL)
			}
		}
	}
	return c.maxTTL
}
