package robots

import (
	"slices"
	"strings"
	"time"
)

// Group is what applies to one crawler: the rules and delay of every group naming its product token,
// merged, or of the `*` groups when none does.
type Group struct {
	rules []rule // longest first, allow before disallow at equal length: the first match decides
	delay time.Duration
}

// For returns the group for the crawler with the given product token (case-insensitive).
func (r *Rules) For(agent string) *Group {
	agent = strings.ToLower(agent)
	if g, ok := r.byAgent.Load(agent); ok {
		return g.(*Group)
	}
	g := r.group(agent)
	if r.cached.Add(1) <= maxAgentsCached {
		r.byAgent.Store(agent, g)
	}
	return g
}

// maxAgentsCached bounds the memo of For per file.
const maxAgentsCached = 16

func (r *Rules) group(agent string) *Group {
	var specific, global []*group
	for _, g := range r.groups {
		for _, a := range g.agents {
			if a == agent && a != "*" {
				specific = append(specific, g)
				break
			}
			if a == "*" {
				global = append(global, g)
				break
			}
		}
	}
	use := global
	if len(specific) > 0 {
		use = specific
	}
	out := &Group{}
	for _, g := range use {
		for _, r := range g.rules {
			if r.pattern != "" { // an empty rule matches nothing (RFC 9309 2.2.2)
				out.rules = append(out.rules, r)
			}
		}
		if g.delay > out.delay {
			out.delay = g.delay
		}
	}
	slices.SortStableFunc(out.rules, func(a, b rule) int {
		if d := len(b.pattern) - len(a.pattern); d != 0 {
			return d
		}
		if a.allow == b.allow {
			return 0
		}
		if a.allow {
			return -1
		}
		return 1
	})
	return out
}

// Allowed reports whether the crawler may fetch path (path and query, as sent in the request line).
func (r *Rules) Allowed(agent, path string) bool { return r.For(agent).Allowed(path) }

// CrawlDelay returns the group's Crawl-delay (or Request-rate as a delay), 0 when it names none.
// When several merged groups name one, the longest wins. Callers cap it with the policy's
// maxCrawlDelay: a site asking for more than the cap is crawled at the cap's pace, not refused.
func (g *Group) CrawlDelay() time.Duration { return g.delay }

// Allowed reports whether the group allows path: the longest matching rule decides, allow wins a tie,
// no matching rule allows, and /robots.txt is always allowed.
func (g *Group) Allowed(path string) bool {
	if path == "" {
		path = "/"
	}
	p := normalise(path)
	if p == "/robots.txt" || strings.HasPrefix(p, "/robots.txt?") {
		return true
	}
	for _, r := range g.rules {
		if strings.HasPrefix(p, r.literal) && matches(p, r.pattern) {
			return r.allow
		}
	}
	return true
}

// matches reports whether pattern matches a prefix of path: '*' matches any run of characters, a
// final '$' anchors the end; elsewhere '$' is literal. Each segment between wildcards is matched at
// its leftmost position after the previous one, which is exact for '*' globs and keeps a lookup near
// linear in the path even for hostile patterns.
func matches(path, pattern string) bool {
	anchored := strings.HasSuffix(pattern, "$")
	if anchored {
		pattern = pattern[:len(pattern)-1]
	}
	seg, rest, wild := strings.Cut(pattern, "*")
	if !strings.HasPrefix(path, seg) {
		return false
	}
	pos := len(seg)
	for wild {
		seg, rest, wild = strings.Cut(rest, "*")
		if !wild && anchored {
			return len(path)-len(seg) >= pos && strings.HasSuffix(path, seg)
		}
		i := strings.Index(path[pos:], seg)
		if i < 0 {
			return false
		}
		pos += i + len(seg)
	}
	return !anchored || pos == len(path)
}

// normalise brings a path or rule to one form (RFC 9309 2.2.2): octets outside printable US-ASCII
// are percent-encoded, percent-encodings use upper-case hex, and encoded unreserved characters
// (letters, digits, '-', '.', '_', '~') are decoded. Reserved characters stay as written, so an
// encoded '*' or '$' is never a wildcard.
func normalise(s string) string {
	if !needsNormalising(s) {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			d := unhex(s[i+1])<<4 | unhex(s[i+2])
			if unreserved(d) {
				b.WriteByte(d)
			} else {
				b.WriteByte('%')
				b.WriteByte(hex[d>>4])
				b.WriteByte(hex[d&15])
			}
			i += 2
		case c <= ' ' || c >= 0x7f:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func needsNormalising(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '%' || c <= ' ' || c >= 0x7f {
			return true
		}
	}
	return false
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

func unreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}
