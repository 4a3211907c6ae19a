package robots

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// naiveRule and naiveAllowed are the lookup as it was before the index and the work budget (kept
// here as the baseline of BenchmarkWorstLookup and the oracle of TestLookupAgreesWithNaive): every
// rule in priority order, each wildcard matched by scanning the path.
type naiveRule struct {
	allow        bool
	pattern, lit string
}

func naiveRules(r *Rules, agent string) []naiveRule {
	_, sel := r.selectGroups(strings.ToLower(agent))
	var out []naiveRule
	for _, gi := range sel {
		g := r.groups[gi]
		for _, ru := range r.rules[g.rules.off : g.rules.off+g.rules.n] {
			p := r.str(ru.span)
			lit := p
			if i := strings.IndexAny(p, "*$"); i >= 0 {
				lit = p[:i]
			}
			out = append(out, naiveRule{ru.allow(), p, lit})
		}
	}
	slices.SortStableFunc(out, func(a, b naiveRule) int {
		if d := len(b.pattern) - len(a.pattern); d != 0 {
			return d
		}
		switch {
		case a.allow == b.allow:
			return 0
		case a.allow:
			return -1
		}
		return 1
	})
	return out
}

func naiveAllowed(rules []naiveRule, path string) bool {
	if path == "" {
		path = "/"
	}
	p := normalise(path)
	if p == "/robots.txt" || strings.HasPrefix(p, "/robots.txt?") {
		return true
	}
	for _, r := range rules {
		if strings.HasPrefix(p, r.lit) && naiveMatches(p, r.pattern) {
			return r.allow
		}
	}
	return true
}

func naiveMatches(path, pattern string) bool {
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

// worstCases are the lookups a site can make costliest: the 700 ms case of issue 10 (12,191 rules
// /*zzz…q against a 60 KiB path), and 500 KiB files against an 8 KiB path.
func worstCases() []struct{ name, body, path string } {
	fill := func(line func(i int) string) string {
		var b bytes.Buffer
		b.WriteString("User-agent: *\n")
		for i := 0; ; i++ {
			l := line(i)
			if b.Len()+len(l) > 500<<10 {
				return b.String()
			}
			b.WriteString(l)
		}
	}
	z := strings.Repeat("z", 29)
	return []struct{ name, body, path string }{
		{"700ms-case", fill(func(int) string { return "Disallow: /*" + z + "q\n" }), "/" + strings.Repeat("z", 60<<10)},
		{"500KiB-distinct-wildcards", fill(func(i int) string { return fmt.Sprintf("Disallow: /*%sq%d\n", z, i) }),
			"/" + strings.Repeat("z", 8<<10-12) + "q0123456789"},
		{"500KiB-plain-lengths", fill(func(i int) string { return "Disallow: /" + strings.Repeat("a", i+1) + "b\n" }),
			"/" + strings.Repeat("a", 8<<10)},
		{"500KiB-one-pattern", "User-agent: *\nDisallow: /" + strings.Repeat("*a", 250<<10) + "$\n",
			"/" + strings.Repeat("ab", 4<<10)},
		{"500KiB-short-wildcards", fill(func(i int) string { return fmt.Sprintf("Disallow: /*%c*%c$\nAllow: /%d*\n", 'a'+i%26, 'a'+i/26%26, i) }),
			"/" + strings.Repeat("abcdefghijklmnopqrstuvwxy", 8<<10/25)},
	}
}

// BenchmarkWorstLookup times the costliest lookups, before (every rule scanned, no budget) and
// after (index, prefilter, work budget), and reports how many times faster the new one is (the
// ratio of the two ns/op; run both, the -bench pattern must match "before").
//
//	go test -run '^$' -bench WorstLookup -benchtime 3s ./pkg/robots/
func BenchmarkWorstLookup(b *testing.B) {
	for _, c := range worstCases() {
		r := Parse([]byte(c.body))
		naive := naiveRules(r, "bot")
		g := r.For("bot")
		var before time.Duration
		b.Run(c.name+"/before", func(b *testing.B) {
			for range b.N {
				_ = naiveAllowed(naive, c.path)
			}
			before = b.Elapsed() / time.Duration(b.N) // the last call has the largest N
		})
		b.Run(c.name+"/after", func(b *testing.B) {
			var v Verdict
			for range b.N {
				v = g.Check(c.path)
			}
			b.StopTimer()
			after := b.Elapsed() / time.Duration(b.N)
			b.ReportMetric(float64(before)/float64(max(after, 1)), "x-faster")
			if v.Exhausted {
				b.ReportMetric(1, "exhausted")
			}
		})
	}
}

// BenchmarkCacheGetHit is the request path's lookup of a cached host (Get and the agent's group),
// serially and from every core at once.
func BenchmarkCacheGetHit(b *testing.B) {
	body := []byte("User-agent: *\nDisallow: /admin/\nDisallow: /*?session=\nAllow: /admin/public\nCrawl-delay: 1\n")
	c := NewCache(&Fetcher{}, CacheOptions{})
	bases := make([]string, 1000)
	for i := range bases {
		bases[i] = fmt.Sprintf("https://host%d.example", i)
		c.mu.Lock()
		c.putLocked(bases[i], Result{Status: Fetched, Rules: Parse(body), TTL: time.Hour}, time.Hour, 0)
		c.mu.Unlock()
	}
	ctx := b.Context()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if c.Get(ctx, bases[i%len(bases)]).For("bot") == nil {
				b.Fatal("no group")
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if c.Get(ctx, bases[i%len(bases)]).For("bot") == nil {
					b.Fatal("no group")
				}
				i++
			}
		})
	})
}
