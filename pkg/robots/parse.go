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

// Bounds of one parsed file. A body of MaxSize bytes reaches neither count (the shortest rule line,
// "allow:a\n", takes 8 bytes); they bound what UnmarshalText accepts from the shared cache, and the
// arena bound covers normalisation, which can make a pattern up to three times longer. Beyond a cap,
// lines are skipped as unreadable ones are: rules after the MaxRules-th count for no group, and a
// group whose user-agent lines all come after the MaxAgents-th is dropped whole (its rules and delay
// do not join the group before it); the lines that follow still count.
const (
	MaxRules    = MaxSize / 8
	MaxAgents   = MaxSize / 8
	maxArena    = 3 * MaxSize
	maxTextSize = 4 << 20 // what UnmarshalText reads: MarshalText of any file Parse accepts fits
)

// Rules is a parsed robots.txt. The zero value allows everything.
//
// It is compact: every normalised pattern and agent token lives in one string, and rules, agents
// and groups are small fixed-size records pointing into it, so a file costs its patterns plus
// about 12 bytes a rule (Size reports the heap it holds).
type Rules struct {
	text   string // arena: normalised patterns and agent tokens, back to back
	rules  []rule
	agents []span // lower-case product tokens, "*" for the global group
	groups []group
	memo   memo // the merged Group per agent, bounded
}

// span is a range: of text for patterns and tokens, of Rules.rules or Rules.agents for a group.
type span struct{ off, n uint32 }

type rule struct {
	span        // the normalised pattern in text, a final '$' included; its length is its priority
	flags uint8 // ruleAllow | ruleWild | ruleAnchored
}

const (
	ruleAllow    = 1 << iota
	ruleWild     // contains '*'
	ruleAnchored // ends with '$'
)

func (r rule) allow() bool { return r.flags&ruleAllow != 0 }

type group struct {
	agents span // in Rules.agents
	rules  span // in Rules.rules
	delay  time.Duration
}

// memo holds the merged Group of the first maxAgentsCached agents asked for. Reads take no lock.
type memo struct {
	mu      sync.Mutex
	entries atomic.Pointer[[]memoEntry]
	bytes   atomic.Int64              // heap held by the memo, for Size
	grow    atomic.Pointer[func(int)] // told how many bytes the memo grew by (the cache's accounting)
}

type memoEntry struct {
	agent string // as asked for, lower-case
	key   string // the token whose groups apply, or "*"
	g     *Group
}

// Parse reads a robots.txt body. It never fails: a line it cannot read is skipped, and what follows
// still counts. Only the first MaxSize bytes are read.
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
	return parse(body)
}

// parser builds a Rules; its slices are copied to their exact size at the end.
type parser struct {
	text   []byte
	rules  []rule
	agents []span
	groups []group
}

func parse(body []byte) *Rules {
	var p parser
	cur := -1         // index of the current group
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
			if len(p.agents) >= MaxAgents {
				// Beyond the cap. A line that would start a group drops that group whole: its
				// rules and delay must not join the group before it.
				if !inAgents {
					cur = -1
				}
				inAgents = true
				continue
			}
			if !inAgents || cur < 0 {
				cur = len(p.groups)
				p.groups = append(p.groups, group{agents: span{uint32(len(p.agents)), 0}, rules: span{uint32(len(p.rules)), 0}})
			}
			inAgents = true
			p.agents = append(p.agents, p.add(agentToken(value)))
			p.groups[cur].agents.n++
		case "allow", "disallow":
			inAgents = false
			if cur >= 0 && value != "" && len(p.rules) < MaxRules && p.addRule(key == "allow", value) {
				p.groups[cur].rules.n++
			}
		case "crawl-delay":
			inAgents = false
			if d, ok := parseDelay(value); ok && cur >= 0 {
				p.groups[cur].delay = d
			}
		case "request-rate":
			inAgents = false
			if d, ok := parseRate(value); ok && cur >= 0 && p.groups[cur].delay == 0 {
				p.groups[cur].delay = d
			}
		}
		// Other keys (sitemap, host, unknown ones) neither end nor start a group.
	}
	return &Rules{
		text:   string(p.text),
		rules:  clip(p.rules),
		agents: clip(p.agents),
		groups: clip(p.groups),
	}
}

// add appends s to the arena.
func (p *parser) add(s string) span {
	off := len(p.text)
	p.text = append(p.text, s...)
	return span{uint32(off), uint32(len(s))}
}

// addRule appends a rule, unless its pattern would take the arena beyond maxArena. Empty patterns
// never get here (they match nothing, RFC 9309 2.2.2).
func (p *parser) addRule(allow bool, value string) bool {
	off := len(p.text)
	p.text = appendNormalised(p.text, value)
	if len(p.text) > maxArena {
		p.text = p.text[:off]
		return false
	}
	pat := p.text[off:]
	var flags uint8
	if allow {
		flags |= ruleAllow
	}
	if bytes.IndexByte(pat, '*') >= 0 {
		flags |= ruleWild
	}
	if pat[len(pat)-1] == '$' {
		flags |= ruleAnchored
	}
	p.rules = append(p.rules, rule{span{uint32(off), uint32(len(pat))}, flags})
	return true
}

// clip copies s to a slice of exactly its length (nil when empty): append's spare capacity would
// otherwise stay allocated for the life of the cache entry.
func clip[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	out := make([]T, len(s))
	copy(out, s)
	return out
}

func (r *Rules) str(s span) string { return r.text[s.off : s.off+s.n] }

// splitLine splits "key: value # comment" into a canonical lower-case key and a trimmed value.
// Like Google's parser, it accepts whitespace instead of the colon and common misspellings of keys.
func splitLine(line []byte) (key, value string, ok bool) {
	if i := bytes.IndexByte(line, '#'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return "", "", false
	}
	k, v, found := bytes.Cut(line, []byte{':'})
	if !found {
		// "Disallow /x": key and value separated by whitespace only.
		i := bytes.IndexAny(line, " \t")
		if i < 0 {
			return "", "", false
		}
		k, v = line[:i], line[i+1:]
	}
	key = canonicalKey(strings.ToLower(string(bytes.TrimSpace(k))))
	return key, string(bytes.TrimSpace(v)), key != ""
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
