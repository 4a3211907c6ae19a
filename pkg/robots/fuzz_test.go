package robots

import (
	"strings"
	"testing"
)

// FuzzRobots: any body, path and agent parse and match without panicking, within the work bound;
// the verdict is the naive matcher's unless Exhausted; and the rules as the shared cache stores
// them (MarshalText, deflated, read back whole) give the same verdict and delay.
//
//	go test -run '^$' -fuzz FuzzRobots -fuzztime 60s ./pkg/robots/
func FuzzRobots(f *testing.F) {
	f.Add([]byte("User-agent: *\nDisallow: /*a*b*c$\nAllow: /%7e\n"), "/xaybzc", "bot")
	f.Add([]byte("\xef\xbbuser-agent foo\ndisallow /\ncrawl-delay: 1e9\n"), "/%zz%", "foo")
	f.Add([]byte("User-agent: *\nCrawl-delay:\nRequest-rate:\nDisallow: %4%41\n"), "/%4A", "x")
	f.Add([]byte("User-agent: bot\nUser-agent: *\nDisallow: /日本\nAllow: /日本$\nRequest-rate: 3/1.5m\n"), "/日本", "BOT")
	f.Add([]byte("User-agent: *\nDisallow: /"+strings.Repeat("*a", 2000)+"$\nAllow: /*zzzzq\nDisallow: /*zzzzq\n"), "/"+strings.Repeat("az", 3000)+"q", "x")
	f.Add([]byte("user-agent: a\n\nuser-agent: b\nsitemap: x\nuser-agent: c\nallow: /$\ndisallow: /\ncrawl-delay: 0.000000001\n"), "/", "c")
	f.Fuzz(func(t *testing.T, body []byte, path, agent string) {
		if len(path) > 8<<10 {
			path = path[:8<<10]
		}
		r := Parse(body)
		g := r.For(agent)
		v, work := g.check(path)
		if work > MaxMatchWork+segmentCost+ruleCost+len(path) {
			t.Fatalf("work %d beyond the bound", work)
		}
		if v.Exhausted && v.Allowed {
			t.Fatal("exhausted yet allowed")
		}
		if !v.Exhausted && len(body) < 4096 {
			if want := naiveAllowed(naiveRules(r, agent), path); v.Allowed != want {
				t.Fatalf("Check(%q) = %+v, naive matcher says %v", path, v, want)
			}
		}
		if d := g.CrawlDelay(); d < 0 || d > maxDelay {
			t.Fatalf("crawl delay %v", d)
		}
		if !g.Allowed("/robots.txt") {
			t.Fatal("/robots.txt disallowed")
		}
		enc, err := encode(Result{Status: Fetched, Code: 200, Rules: r})
		if err != nil {
			t.Fatal(err)
		}
		back, err := decode(enc)
		if err != nil {
			t.Fatalf("decode(encode): %v", err)
		}
		g2 := back.Rules.For(agent)
		if v2 := g2.Check(path); v2 != v {
			text, _ := r.MarshalText()
			t.Fatalf("verdict %+v, after the round trip %+v\n%s", v, v2, text)
		}
		if g2.CrawlDelay() != g.CrawlDelay() {
			t.Fatalf("delay %v, after the round trip %v", g.CrawlDelay(), g2.CrawlDelay())
		}
	})
}
