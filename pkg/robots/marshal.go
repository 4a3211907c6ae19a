package robots

import (
	"bytes"
	"strconv"
)

// MarshalText writes the rules back as a minimal robots.txt that parses to the same Rules: one group
// per original group, normalised patterns, the delay as Crawl-delay; comments, sitemaps and unknown
// lines are dropped. This is what the cluster-wide cache stores.
func (r *Rules) MarshalText() ([]byte, error) {
	var b bytes.Buffer
	for _, g := range r.groups {
		for _, a := range g.agents {
			b.WriteString("user-agent: ")
			b.WriteString(a)
			b.WriteByte('\n')
		}
		for _, ru := range g.rules {
			if ru.allow {
				b.WriteString("allow: ")
			} else {
				b.WriteString("disallow: ")
			}
			b.WriteString(ru.pattern)
			b.WriteByte('\n')
		}
		if g.delay > 0 {
			b.WriteString("crawl-delay: ")
			b.WriteString(strconv.FormatFloat(g.delay.Seconds(), 'f', -1, 64))
			b.WriteByte('\n')
		}
		if len(g.rules) == 0 && g.delay == 0 {
			// An empty group still claims its agents; a harmless line keeps the next group apart.
			b.WriteString("disallow:\n")
		}
	}
	return b.Bytes(), nil
}

// size estimates the memory the rules hold, for the cache's byte budget.
func (r *Rules) size() int {
	n := 64
	for _, g := range r.groups {
		n += 64 + len(g.agents)*24
		for _, a := range g.agents {
			n += len(a)
		}
		for _, ru := range g.rules {
			n += 40 + len(ru.pattern)
		}
	}
	return n
}
