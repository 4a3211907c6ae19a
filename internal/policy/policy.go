package policy

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// HostPolicy is what the policy sets for one host: its effective limits (the most specific rule,
// else the defaults). semaphore.Limits is the part of it a turn is taken with.
type HostPolicy struct {
	MaxConcurrency int
	MinDelay       time.Duration
	MaxCrawlDelay  time.Duration
	EnforceRobots  bool
	WaitTimeout    time.Duration
	Tunnel         bool  // tls: tunnel (a blind CONNECT tunnel) instead of intercept
	GroupBy        Group // what shares the budget: the host (the zero value), its registrable domain, its address
}

// Delay is the delay between starts for a robots.txt Crawl-delay: max(minDelay, min(crawlDelay,
// maxCrawlDelay)). An origin's backoff (429, 503) is not part of it: the semaphore's gate adds that.
func (l HostPolicy) Delay(crawlDelay time.Duration) time.Duration {
	return max(l.MinDelay, min(crawlDelay, l.MaxCrawlDelay))
}

// BuiltinDefaults apply to whatever the document's defaults leave unset.
var BuiltinDefaults = HostPolicy{MaxConcurrency: 2, MinDelay: time.Second, MaxCrawlDelay: 30 * time.Second,
	EnforceRobots: true, WaitTimeout: 60 * time.Second}

// Policy is a parsed, validated document, ready for lookups. It is immutable and safe to share.
type Policy struct {
	defaults HostPolicy
	rules    []Rule
}

type pattern struct {
	host     string // normalized; for a wildcard, the suffix without "*."
	wildcard bool
	port     string // "" for any port
}

// specificity orders patterns: an exact host beats any wildcard, a longer wildcard a shorter one, and a
// port breaks ties.
func (p pattern) specificity() int {
	s := strings.Count(p.host, ".") * 4
	if !p.wildcard {
		s += 1 << 20
	}
	if p.port != "" {
		s += 2
	}
	return s
}

func (p pattern) matches(host, port string) bool {
	if p.port != "" && p.port != port {
		return false
	}
	if p.wildcard {
		return strings.HasSuffix(host, "."+p.host)
	}
	return host == p.host
}

func compile(doc Document) (*Policy, error) {
	if err := validateFields(doc.Defaults, "defaults"); err != nil {
		return nil, err
	}
	p := &Policy{defaults: apply(BuiltinDefaults, doc.Defaults)}
	for _, r := range doc.Rules {
		if err := validateFields(r.Fields, describe(r)); err != nil {
			return nil, err
		}
		if len(r.Hosts) == 0 {
			return nil, fmt.Errorf("%w: %s: hosts must name at least one host pattern", ErrInvalid, describe(r))
		}
		for _, h := range r.Hosts {
			pt, err := parsePattern(h)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, describe(r), err)
			}
			r.patterns = append(r.patterns, pt)
		}
		p.rules = append(p.rules, r)
	}
	return p, nil
}

// apply overlays the set fields of f on l.
func apply(l HostPolicy, f Fields) HostPolicy {
	if f.MaxConcurrency != nil {
		l.MaxConcurrency = *f.MaxConcurrency
	}
	if f.MinDelay != nil {
		l.MinDelay = time.Duration(*f.MinDelay)
	}
	if f.MaxCrawlDelay != nil {
		l.MaxCrawlDelay = time.Duration(*f.MaxCrawlDelay)
	}
	if f.Robots != nil {
		l.EnforceRobots = *f.Robots == "enforce"
	}
	if f.WaitTimeout != nil {
		l.WaitTimeout = time.Duration(*f.WaitTimeout)
	}
	if f.TLS != nil {
		l.Tunnel = *f.TLS == "tunnel"
	}
	if f.GroupBy != nil {
		l.GroupBy = groupNames[*f.GroupBy]
	}
	return l
}

// stricter combines two equally specific rules field by field.
func stricter(a, b HostPolicy) HostPolicy {
	return HostPolicy{
		MaxConcurrency: min(a.MaxConcurrency, b.MaxConcurrency),
		MinDelay:       max(a.MinDelay, b.MinDelay),
		MaxCrawlDelay:  max(a.MaxCrawlDelay, b.MaxCrawlDelay),
		EnforceRobots:  a.EnforceRobots || b.EnforceRobots,
		WaitTimeout:    min(a.WaitTimeout, b.WaitTimeout),
		Tunnel:         a.Tunnel && b.Tunnel,
		GroupBy:        max(a.GroupBy, b.GroupBy), // the broader group: fewer requests at once reach the server
	}
}

// For returns the effective limits of a normalized host and port (see Normalize).
func (p *Policy) For(host, port string) HostPolicy {
	best, found := -1, false
	var out HostPolicy
	for _, r := range p.rules {
		for _, pt := range r.patterns {
			if !pt.matches(host, port) {
				continue
			}
			l, s := apply(p.defaults, r.Fields), pt.specificity()
			switch {
			case s > best:
				best, out, found = s, l, true
			case s == best:
				out = stricter(out, l)
			}
		}
	}
	if !found {
		return p.defaults
	}
	return out
}

// Named reports whether some rule names host (for bounded per-host metric labels).
func (p *Policy) Named(host, port string) bool {
	for _, r := range p.rules {
		for _, pt := range r.patterns {
			if !pt.wildcard && pt.matches(host, port) {
				return true
			}
		}
	}
	return false
}

// NamesDomain reports whether some rule's pattern is domain itself or its subdomains
// ("example.com", "*.example.com"), for bounded metric labels of domain groups.
func (p *Policy) NamesDomain(domain string) bool {
	for _, r := range p.rules {
		for _, pt := range r.patterns {
			if pt.host == domain {
				return true
			}
		}
	}
	return false
}

func parsePattern(s string) (pattern, error) {
	var pt pattern
	hostport := strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(hostport, "*."); ok {
		pt.wildcard, hostport = true, rest
	}
	host, port := hostport, ""
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		host, port = h, p
	}
	if strings.ContainsAny(host, "*/ ") || host == "" {
		return pt, fmt.Errorf("host pattern %q: want example.com, *.example.com or example.com:8443", s)
	}
	n, err := normalizeHost(host)
	if err != nil {
		return pt, fmt.Errorf("host pattern %q: %w", s, err)
	}
	if strings.HasPrefix(n, ".") || strings.Contains(n, "..") {
		return pt, fmt.Errorf("host pattern %q: empty label", s)
	}
	if p, err := strconv.Atoi(port); port != "" && (err != nil || p < 1 || p > 65535) {
		return pt, fmt.Errorf("host pattern %q: port %q is not 1-65535", s, port)
	}
	pt.host, pt.port = n, port
	return pt, nil
}
