package robots

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Status is what fetching a host's robots.txt established (RFC 9309 section 2.3.1).
type Status int

const (
	// Fetched: 2xx; the body's rules apply.
	Fetched Status = iota
	// Unavailable: 4xx (but 429), or too many redirects; the crawler may access everything.
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

// Result is one host's robots.txt as fetched, with how long it may be cached.
type Result struct {
	Status Status
	Rules  *Rules        // the parsed body when Fetched; empty otherwise
	TTL    time.Duration // cache lifetime
	Code   int           // last HTTP status, 0 when none was received
	Err    error         // why it is Unreachable, if not by status code
}

// For returns the group that applies to agent: the file's group when Fetched, a group allowing all when
// Unavailable, and one disallowing all (except /robots.txt) when Unreachable.
func (r *Result) For(agent string) *Group {
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

// Fetcher fetches robots.txt files. The zero value is not usable: Client must be set.
type Fetcher struct {
	// Client sends the requests; in the sidecar it is the same guarded upstream transport as crawler
	// traffic. Its redirect policy is bypassed: the Fetcher follows redirects itself.
	Client       *http.Client
	UserAgent    string        // sent as User-Agent
	Timeout      time.Duration // for the whole fetch, redirects included; default 10s
	FailureTTL   time.Duration // cache lifetime of an Unreachable result; default 5m
	MinTTL       time.Duration // bounds of the lifetime taken from Cache-Control; default 1h
	MaxTTL       time.Duration // default 24h (RFC 9309: no longer than 24 hours)
	MaxRedirects int           // default 5
}

func (f *Fetcher) defaults() Fetcher {
	c := *f
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Timeout, 10*time.Second)
	def(&c.FailureTTL, 5*time.Minute)
	def(&c.MinTTL, time.Hour)
	def(&c.MaxTTL, 24*time.Hour)
	if c.MaxRedirects <= 0 {
		c.MaxRedirects = 5
	}
	return c
}

// Fetch retrieves base's /robots.txt (base is "scheme://host[:port]"). It never fails: every failure
// is a Result with status Unreachable or Unavailable, as RFC 9309 says how to treat it.
func (f *Fetcher) Fetch(ctx context.Context, base string) *Result {
	c := f.defaults()
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	client := *c.Client
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	target := strings.TrimSuffix(base, "/") + "/robots.txt"
	for hop := 0; ; hop++ {
		res, next := c.get(ctx, &client, target)
		if next == "" {
			return res
		}
		if hop == c.MaxRedirects {
			// RFC 9309 2.3.1.2: after five consecutive redirects the file may be taken as unavailable.
			return &Result{Status: Unavailable, Rules: &Rules{}, TTL: c.FailureTTL, Code: res.Code,
				Err: fmt.Errorf("robots: more than %d redirects", c.MaxRedirects)}
		}
		target = next
	}
}

// get makes one request: it returns a final result, or the next URL of a redirect.
func (c *Fetcher) get(ctx context.Context, client *http.Client, target string) (*Result, string) {
	unreachable := func(code int, err error) *Result {
		return &Result{Status: Unreachable, Rules: &Rules{}, TTL: c.FailureTTL, Code: code, Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return unreachable(0, err), ""
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
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
			return &Result{Status: Unavailable, Rules: &Rules{}, TTL: c.FailureTTL, Code: code, Err: err}, ""
		}
		return &Result{Code: code}, loc.String()
	case code >= 200 && code < 300:
		body, err := io.ReadAll(io.LimitReader(resp.Body, MaxSize))
		if err != nil && !errors.Is(err, io.EOF) {
			return unreachable(code, fmt.Errorf("robots: read body: %w", err)), ""
		}
		return &Result{Status: Fetched, Rules: Parse(body), TTL: c.ttl(resp.Header), Code: code}, ""
	case code == http.StatusTooManyRequests || code >= 500:
		return unreachable(code, nil), ""
	case code >= 400:
		return &Result{Status: Unavailable, Rules: &Rules{}, TTL: c.ttl(resp.Header), Code: code}, ""
	}
	return unreachable(code, fmt.Errorf("robots: unexpected status %d", code)), ""
}

// ttl reads Cache-Control max-age, bounded to [MinTTL, MaxTTL]; MaxTTL when absent.
func (c *Fetcher) ttl(h http.Header) time.Duration {
	for _, d := range strings.Split(h.Get("Cache-Control"), ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(strings.ToLower(d)), "max-age="); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 && n < 1<<31 {
				return min(max(time.Duration(n)*time.Second, c.MinTTL), c.MaxTTL)
			}
		}
	}
	return c.MaxTTL
}
