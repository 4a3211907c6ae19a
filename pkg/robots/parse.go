package robots

import (
	"bytes"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MaxSize is how much of a robots.txt body is parsed (RFC 9309 asks for at least 500 KiB); the rest
// is ignored.
const MaxSize = 512 << 10

// Rules is a parsed robots.txt. The zero value allows everything.
type Rules struct {
	groups []*group
	// byAgent memoises For: a crawler sends one agent on every request, and merging its groups
	// allocates. Bounded, as a site could otherwise be probed with many agents.
	byAgent sync.Map // lower-case agent -> *Group
	cached  atomic.Int32
}

type rule struct {
	allow   bool
	pattern string // normalised
	literal string // the pattern up to its first wildcard: a path must start with it to match
}

func newRule(allow bool, value string) rule {
	p := normalise(value)
	lit := p
	if i := strings.IndexAny(p, "*$"); i >= 0 {
		lit = p[:i]
	}
	return rule{allow: allow, pattern: p, literal: lit}
}

type group struct {
	agents []string // lower-case product tokens; "*" for the global group
	rules  []rule
	delay  time.Duration // Crawl-delay, or Request-rate turned into a delay; 0 when absent
}

// Parse reads a robots.txt body. It never fails: a line it cannot read is skipped, and what follows
// still counts.
func Parse(body []byte) *Rules {
	if len(body) > MaxSize {
		body = body[:MaxSize]
	}
	// A byte order mark, or the start of one, is skipped (as Google's parser does).
	for _, bom := range []string{"\xef\xbb\xbf", "\xef\xbb", "\xef"} {
		if bytes.HasPrefix(body, []byte(bom)) {
			body = body[len(bom):]
			break
		}
	}
	r := &Rules{}
	var cur *group
	inAgents := false // the previous meaningful line was a user-agent line
	for len(body) > 0 {
		var line []byte
		if i := bytes.IndexAny(body, "\r\n"); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			line, body = body, nil
		}
		key, value, ok := splitLine(line)
		if !ok {
			continue
		}
		switch key {
		case "user-agent":
			if !inAgents || cur == nil {
				cur = &group{}
				r.groups = append(r.groups, cur)
			}
			inAgents = true
			cur.agents = append(cur.agents, agentToken(value))
		case "allow", "disallow":
			inAgents = false
			if cur != nil {
				cur.rules = append(cur.rules, newRule(key == "allow", value))
			}
		case "crawl-delay":
			inAgents = false
			if d, ok := parseDelay(value); ok && cur != nil {
				cur.delay = d
			}
		case "request-rate":
			inAgents = false
			if d, ok := parseRate(value); ok && cur != nil && cur.delay == 0 {
				cur.delay = d
			}
		}
		// Other keys (sitemap, host, unknown ones) neither end nor start a group.
	}
	return r
}

// splitLine splits "key: value # comment" into a canonical lower-case key and a trimmed value.
// Like Google's parser, it accepts whitespace instead of the colon and common misspellings of keys.
func splitLine(line []byte) (key, value string, ok bool) {
	if i := bytes.IndexByte(line, '#'); i >= 0 {
		line = line[:i]
	}
	s := strings.TrimSpace(string(line))
	if s == "" {
		return "", "", false
	}
	k, v, found := strings.Cut(s, ":")
	if !found {
		// "Disallow /x": key and value separated by whitespace only.
		i := strings.IndexAny(s, " \t")
		if i < 0 {
			return "", "", false
		}
		k, v = s[:i], s[i+1:]
	}
	key = canonicalKey(strings.ToLower(strings.TrimSpace(k)))
	return key, strings.TrimSpace(v), key != ""
}

func canonicalKey(k string) string {
	switch k {
	case "user-agent", "useragent", "user agent":
		return "user-agent"
	case "allow":
		return "allow"
	case "disallow", "dissallow", "dissalow", "disalow", "diasllow", "disallaw":
		return "disallow"
	case "crawl-delay", "crawldelay", "crawl delay":
		return "crawl-delay"
	case "request-rate":
		return "request-rate"
	case "sitemap", "site-map":
		return "sitemap"
	}
	return "other"
}

// agentToken reads the product token of a user-agent line: "*" for the global group, else the
// leading run of letters, '-' and '_' (RFC 9309 section 2.2.1), lower-cased.
func agentToken(v string) string {
	if v == "*" || strings.HasPrefix(v, "* ") || strings.HasPrefix(v, "*\t") {
		return "*"
	}
	return strings.ToLower(v[:tokenLen(v)])
}

func tokenLen(v string) int {
	for i := 0; i < len(v); i++ {
		if !tokenChar(v[i]) {
			return i
		}
	}
	return len(v)
}

func tokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_'
}

// ProductToken returns the product token of an HTTP User-Agent header: the text before the first
// '/' or space ("Mozilla/5.0 ..." gives "Mozilla"), restricted to the characters RFC 9309 allows.
func ProductToken(userAgent string) string {
	return userAgent[:tokenLen(userAgent)]
}
