package robots

import (
	"hash/maphash"
	"slices"
	"strings"
	"time"
)

// Group is what applies to one crawler: the rules and delay of every group naming its product token,
// merged, or of the `*` groups when none does. It indexes the rules for lookup: rules without '*'
// in a hash table of their literal text, the others in priority order.
type Group struct {
	text  string // the file's arena, which the rules point into
	delay time.Duration
	plain []rule     // rules without '*', one per distinct (pattern, anchored); allow wins a duplicate
	slots []uint32   // open addressing over plain by maphash of the literal: 1 + index, 0 empty
	lens  []uint32   // distinct lengths of the unanchored plain patterns, longest first
	wild  []wildRule // rules with '*', longest first, allow before disallow at equal length
}

type wildRule struct {
	rule
	longest span // the pattern's longest literal run, for the prefilter
}

// seed keys the index's hash; random per process, so a site cannot aim collisions at it.
var seed = maphash.MakeSeed()

// maxAgentsCached bounds the memo of For per file: a crawler sends one agent on every request, and
// a site could otherwise make every new agent cost a merged copy of its rules.
const maxAgentsCached = 8

// For returns the group for the crawler with the given product token (case-insensitive). The
// groups of the first 8 agents asked for are memoised (agents that fall back to the
// `*` groups share one); later agents get a new merge on each call.
func (r *Rules) For(agent string) *Group {
	agent = strings.ToLower(agent)
	if es := r.memo.entries.Load(); es != nil {
		for _, e := range *es {
			if e.agent == agent {
				return e.g
			}
		}
	}
	key, sel := r.selectGroups(agent)
	r.memo.mu.Lock()
	var old []memoEntry
	if es := r.memo.entries.Load(); es != nil {
		old = *es
	}
	var g *Group
	for _, e := range old {
		if e.agent == agent {
			r.memo.mu.Unlock()
			return e.g
		}
		if e.key == key {
			g = e.g
		}
	}
	grew := 0
	if g == nil {
		g = r.merge(sel)
		grew = g.size()
	}
	if len(old) < maxAgentsCached {
		es := make([]memoEntry, len(old)+1)
		copy(es, old)
		es[len(old)] = memoEntry{agent: strings.Clone(agent), key: key, g: g}
		r.memo.entries.Store(&es)
		// Entries slices replace each other; the last one is what stays.
		grew += allocSize(len(es)*memoEntrySize) - allocSize(len(old)*memoEntrySize) + allocSize(len(agent))
		r.memo.bytes.Add(int64(grew))
	} else {
		grew = 0 // not kept: garbage once the caller is done
	}
	grow := r.memo.grow.Load()
	r.memo.mu.Unlock()
	if grow != nil && grew != 0 {
		(*grow)(grew)
	}
	return g
}

// selectGroups returns the indexes of the groups naming agent, with agent as their key, or those of
// the `*` groups with key "*".
func (r *Rules) selectGroups(agent string) (key string, sel []int) {
	var global []int
	for i, g := range r.groups {
		for _, a := range r.agents[g.agents.off : g.agents.off+g.agents.n] {
			tok := r.str(a)
			if tok == agent && tok != "*" {
				sel = append(sel, i)
				break
			}
			if tok == "*" {
				global = append(global, i)
				break
			}
		}
	}
	if len(sel) > 0 {
		return agent, sel
	}
	return "*", global
}

// merge builds the Group of the selected groups: duplicates dropped, plain rules indexed.
func (r *Rules) merge(sel []int) *Group {
	g := &Group{text: r.text}
	byPattern := map[string]int{} // pattern (with its '$') -> index in plain or wild
	var lens []uint32
	for _, gi := range sel {
		src := r.groups[gi]
		g.delay = max(g.delay, src.delay)
		for _, ru := range r.rules[src.rules.off : src.rules.off+src.rules.n] {
			pat := r.str(ru.span)
			if i, dup := byPattern[pat]; dup {
				if ru.allow() { // allow wins a tie, and an exact duplicate is one
					if ru.flags&ruleWild != 0 {
						g.wild[i].flags |= ruleAllow
					} else {
						g.plain[i].flags |= ruleAllow
					}
				}
				continue
			}
			if ru.flags&ruleWild != 0 {
				byPattern[pat] = len(g.wild)
				g.wild = append(g.wild, wildRule{rule: ru, longest: longestLiteral(pat, ru.off)})
				continue
			}
			byPattern[pat] = len(g.plain)
			g.plain = append(g.plain, ru)
			if ru.flags&ruleAnchored == 0 {
				lens = append(lens, ru.n)
			}
		}
	}
	slices.SortStableFunc(g.wild, func(a, b wildRule) int {
		if d := int(b.n) - int(a.n); d != 0 {
			return d
		}
		return int(b.flags&ruleAllow) - int(a.flags&ruleAllow)
	})
	slices.Sort(lens)
	lens = slices.Compact(lens)
	slices.Reverse(lens)
	g.lens = clip(lens)
	g.plain = clip(g.plain)
	g.wild = clip(g.wild)
	g.index()
	return g
}

// longestLiteral returns the longest run of pat (at off in the arena) without '*' or a final '$'.
func longestLiteral(pat string, off uint32) span {
	pat = strings.TrimSuffix(pat, "$")
	var best span
	start := 0
	for i := 0; i <= len(pat); i++ {
		if i == len(pat) || pat[i] == '*' {
			if n := uint32(i - start); n > best.n {
				best = span{off + uint32(start), n}
			}
			start = i + 1
		}
	}
	return best
}

// literal is a plain rule's text without its final '$'.
func (g *Group) literal(r rule) string {
	n := r.n
	if r.flags&ruleAnchored != 0 {
		n--
	}
	return g.text[r.off : r.off+n]
}

// index fills slots: a table of at least twice as many slots as plain rules.
func (g *Group) index() {
	if len(g.plain) == 0 {
		return
	}
	n := 4
	for n < 2*len(g.plain) {
		n <<= 1
	}
	g.slots = make([]uint32, n)
	mask := uint64(n - 1)
	for i, r := range g.plain {
		for h := maphash.String(seed, g.literal(r)) & mask; ; h = (h + 1) & mask {
			if g.slots[h] == 0 {
				g.slots[h] = uint32(i + 1)
				break
			}
		}
	}
}

// lookup finds the plain rule whose literal is s, anchored or not.
func (g *Group) lookup(s string, anchored bool) (rule, bool) {
	if len(g.slots) == 0 {
		return rule{}, false
	}
	mask := uint64(len(g.slots) - 1)
	for h := maphash.String(seed, s) & mask; g.slots[h] != 0; h = (h + 1) & mask {
		r := g.plain[g.slots[h]-1]
		if (r.flags&ruleAnchored != 0) == anchored && g.literal(r) == s {
			return r, true
		}
	}
	return rule{}, false
}

// CrawlDelay returns the group's Crawl-delay (or Request-rate as a delay), 0 when it names none.
// When several merged groups name one, the longest wins. It is whatever the site asked for:
// callers should cap it (and crawl at the cap's pace rather than not at all).
func (g *Group) CrawlDelay() time.Duration { return g.delay }
