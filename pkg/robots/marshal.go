package robots

import (
	"bytes"
	"errors"
	"strconv"
	"time"
)

// MarshalText writes the rules back as a robots.txt that parses to the same verdicts: one group per
// original group, patterns in normal form (a fixed point of normalisation), the delay as an exact
// decimal Crawl-delay; comments, sitemaps and unknown lines are dropped. It can be longer than
// MaxSize (normalisation may triple a pattern): read it back with UnmarshalText, not Parse, which
// would cut it.
func (r *Rules) MarshalText() ([]byte, error) {
	var b bytes.Buffer
	b.Grow(len(r.text) + 12*len(r.rules) + 13*len(r.agents) + 32*len(r.groups))
	for _, g := range r.groups {
		for _, a := range r.agents[g.agents.off : g.agents.off+g.agents.n] {
			b.WriteString("user-agent: ")
			b.WriteString(r.str(a))
			b.WriteByte('\n')
		}
		for _, ru := range r.rules[g.rules.off : g.rules.off+g.rules.n] {
			if ru.allow() {
				b.WriteString("allow: ")
			} else {
				b.WriteString("disallow: ")
			}
			b.WriteString(r.str(ru.span))
			b.WriteByte('\n')
		}
		if g.delay > 0 {
			b.WriteString("crawl-delay: ")
			b.WriteString(formatSeconds(g.delay))
			b.WriteByte('\n')
		}
		if g.rules.n == 0 && g.delay == 0 {
			// An empty group still claims its agents; a harmless line keeps the next group apart.
			b.WriteString("disallow:\n")
		}
	}
	return b.Bytes(), nil
}

// ErrTooLarge: UnmarshalText was given more than any robots.txt Parse accepts can marshal to.
var ErrTooLarge = errors.New("robots: marshalled rules too large")

// errInUse: UnmarshalText was called on Rules that already hold a file (maybe shared, as a Cache's
// are), which it would change under their readers.
var errInUse = errors.New("robots: UnmarshalText into Rules already in use")

// UnmarshalText reads what MarshalText wrote into a zero Rules, whole (up to 4 MiB; Parse would
// stop at MaxSize). It refuses Rules that already hold rules or were asked For a group: parsed Rules
// are never changed.
func (r *Rules) UnmarshalText(text []byte) error {
	if len(text) > maxTextSize {
		return ErrTooLarge
	}
	if r.text != "" || len(r.groups) > 0 || r.memo.entries.Load() != nil {
		return errInUse
	}
	p := parse(text)
	r.text, r.rules, r.agents, r.groups = p.text, p.rules, p.agents, p.groups
	return nil
}

// formatSeconds writes d as exact decimal seconds ("1.5", "0.000000001").
func formatSeconds(d time.Duration) string {
	s := strconv.FormatInt(int64(d/time.Second), 10)
	if ns := int64(d % time.Second); ns != 0 {
		f := strconv.FormatInt(ns+1e9, 10)[1:] // nine digits, leading zeros kept
		s += "." + string(bytes.TrimRight([]byte(f), "0"))
	}
	return s
}
