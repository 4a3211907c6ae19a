package robots

import "strings"

// MaxMatchWork bounds the work of one lookup, in steps of about a byte compared or scanned: a
// wildcard rule costs ruleCost to consider, each of its segments segmentCost plus the bytes of the
// path it scans. Rules without '*' are found through a hash index and cost no budget. A lookup that
// runs out returns a Verdict with Exhausted set, the same for every process, whatever its load.
// At about 2 ns a step in the worst case, a lookup stays under a millisecond.
const MaxMatchWork = 1 << 18

const (
	ruleCost    = 8
	segmentCost = 8
)

// Verdict is the answer of a lookup.
type Verdict struct {
	// Allowed: the path may be fetched. False when Exhausted.
	Allowed bool
	// Exhausted: the rules were too costly to evaluate within MaxMatchWork for this path; the
	// caller should refuse the request (the verdict is unknown, not a disallow by the site).
	Exhausted bool

	rule  string // the deciding pattern, "" when no rule matched
	allow bool
}

// Rule returns the deciding rule as a robots.txt line ("disallow: /private"), or "" when no rule
// matched (or the lookup was Exhausted).
func (v Verdict) Rule() string {
	switch {
	case v.rule == "":
		return ""
	case v.allow:
		return "allow: " + v.rule
	}
	return "disallow: " + v.rule
}

// Allowed reports whether the crawler may fetch path (path and query, as sent in the request line).
// A lookup that exhausts its budget answers false.
func (r *Rules) Allowed(agent, path string) bool { return r.For(agent).Allowed(path) }

// Allowed reports whether the group allows path; false when the lookup exhausted its budget (see
// Check, which tells the two apart).
func (g *Group) Allowed(path string) bool { return g.Check(path).Allowed }

// Check decides path (path and query, as sent in the request line): the longest matching rule
// decides, allow wins a tie, no matching rule allows, and /robots.txt is always allowed.
func (g *Group) Check(path string) Verdict {
	v, _ := g.check(path)
	return v
}

// check is Check, also returning the work it spent (within MaxMatchWork plus one step's cost).
func (g *Group) check(path string) (Verdict, int) {
	if path == "" {
		path = "/"
	}
	p := normalise(path)
	if p == "/robots.txt" || strings.HasPrefix(p, "/robots.txt?") {
		return Verdict{Allowed: true}, 0
	}
	best, found := -1, rule{}
	better := func(r rule) {
		if prio := int(r.n); prio > best || prio == best && r.allow() {
			best, found = prio, r
		}
	}
	if r, ok := g.lookup(p, true); ok {
		better(r)
	}
	for _, n := range g.lens {
		if int(n) > len(p) {
			continue
		}
		if int(n) < best {
			break
		}
		if r, ok := g.lookup(p[:n], false); ok {
			better(r)
			break
		}
	}
	work := 0
	var set *byteSet
	for i := range g.wild {
		w := &g.wild[i]
		if prio := int(w.n); prio < best || prio == best && (found.allow() || !w.allow()) {
			break // sorted: nothing after can win
		}
		work += ruleCost
		if work > MaxMatchWork {
			return Verdict{Exhausted: true}, work
		}
		if work == ruleCost { // the first wildcard rule considered
			set = pathBytes(p)
			work += len(p) / 8
		}
		work += int(w.longest.n) / 8
		if !set.hasAll(g.text[w.longest.off : w.longest.off+w.longest.n]) {
			continue
		}
		ok, cost := g.matchWild(p, g.text[w.off:w.off+w.n], MaxMatchWork-work)
		work += cost
		if work > MaxMatchWork {
			return Verdict{Exhausted: true}, work
		}
		if ok {
			best, found = int(w.n), w.rule
			break
		}
	}
	if best < 0 {
		return Verdict{Allowed: true}, work
	}
	return Verdict{Allowed: found.allow(), rule: g.text[found.off : found.off+found.n], allow: found.allow()}, work
}

// matchWild reports whether pattern matches a prefix of path: '*' matches any run of characters, a
// final '$' anchors the end; elsewhere '$' is literal. Each segment between wildcards is matched at
// its leftmost position after the previous one, which is exact for '*' globs. It stops, returning
// a cost above budget, when its work would exceed budget.
func (g *Group) matchWild(path, pattern string, budget int) (bool, int) {
	anchored := strings.HasSuffix(pattern, "$")
	if anchored {
		pattern = pattern[:len(pattern)-1]
	}
	seg, rest, wild := strings.Cut(pattern, "*")
	cost := segmentCost + len(seg)
	if !strings.HasPrefix(path, seg) {
		return false, cost
	}
	pos := len(seg)
	for wild {
		if cost > budget {
			return false, cost
		}
		seg, rest, wild = strings.Cut(rest, "*")
		if !wild && anchored {
			cost += segmentCost + len(seg)
			return len(path)-len(seg) >= pos && strings.HasSuffix(path, seg), cost
		}
		if seg == "" {
			cost++
			continue
		}
		cost += segmentCost
		// Scan no further than the budget allows: found within it, the scan cost what it read;
		// not found in a window the budget cut short, the verdict is unknown.
		end := len(path)
		if left := budget - cost; left < end-pos {
			end = pos + max(left, 0)
		}
		i := strings.Index(path[pos:end], seg)
		if i < 0 {
			cost += end - pos
			if end < len(path) {
				return false, budget + 1
			}
			return false, cost
		}
		cost += i + len(seg)
		pos += i + len(seg)
	}
	return !anchored || pos == len(path), cost
}

// byteSet is the set of bytes a path holds: a rule whose longest literal has a byte the path lacks
// cannot match, which a lookup learns without scanning the path again.
type byteSet [256]bool

func pathBytes(p string) *byteSet {
	var s byteSet
	for i := 0; i < len(p); i++ {
		s[p[i]] = true
	}
	return &s
}

func (s *byteSet) hasAll(lit string) bool {
	for i := 0; i < len(lit); i++ {
		if !s[lit[i]] {
			return false
		}
	}
	return true
}
