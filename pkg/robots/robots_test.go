package robots

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestGroupsAndAgents(t *testing.T) {
	const body = `# comment
Disallow: /before-any-agent
User-agent: FooBot/2.1
User-agent: barbot
Disallow: /private
Crawl-delay: 0.5

user-agent: foobot
allow: /private/ok
this line is nonsense
Disallow /typo-without-colon

User-agent: *
Disallow: /
Request-rate: 1/5
Sitemap: http://example.com/sitemap.xml
`
	r := Parse([]byte(body))
	cases := []struct {
		name, agent, path string
		allowed           bool
	}{
		{"own group", "FooBot", "/private/x", false},
		{"merged groups, longer allow wins", "foobot", "/private/ok/page", true},
		{"unreadable line skipped", "FOOBOT", "/typo-without-colon", false},
		{"rules before any agent ignored", "FooBot", "/before-any-agent", true},
		{"second agent of a group", "BarBot", "/private", false},
		{"other group's allow not merged", "BarBot", "/private/ok", false},
		{"second agent, unlisted path", "BarBot", "/public", true},
		{"token matched whole, not by prefix", "foo", "/public", false},
		{"unknown agent gets *", "other", "/anything", false},
		{"robots.txt always allowed", "other", "/robots.txt", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := r.Allowed(c.agent, c.path); got != c.allowed {
				t.Errorf("Allowed(%q, %q) = %v, want %v", c.agent, c.path, got, c.allowed)
			}
		})
	}
	if d := r.For("foobot").CrawlDelay(); d != 500*time.Millisecond {
		t.Errorf("foobot crawl delay %v, want 500ms", d)
	}
	if d := r.For("other").CrawlDelay(); d != 5*time.Second {
		t.Errorf("request-rate 1/5 gave %v, want 5s", d)
	}
}

func TestPatterns(t *testing.T) {
	cases := []struct {
		name, pattern, path string
		match               bool
	}{
		{"prefix", "/fish", "/fish.html", true},
		{"case-sensitive", "/fish", "/Fish", false},
		{"trailing star", "/fish*", "/fishheads/yummy", true},
		{"inner star", "/*.php", "/folder/filename.php?parameters", true},
		{"anchored", "/*.php$", "/filename.php", true},
		{"anchored, more after", "/*.php$", "/filename.php?x", false},
		{"two literals", "/fish*.php", "/fishheads/catfish.php?p", true},
		{"dollar not at the end is literal", "/a$b", "/a$b/c", true},
		{"unreserved escape decoded", "/%7Efoo", "/~foo", true},
		{"reserved escape kept, hex case-insensitive", "/%2a", "/%2A", true},
		{"encoded star is no wildcard", "/%2A", "/x", false},
		{"star alone", "*", "/", true},
		{"stars then anchor", "/***$", "/", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := Parse([]byte("User-agent: *\nDisallow: " + c.pattern + "\n")).For("x")
			if got := !g.Allowed(c.path); got != c.match {
				t.Errorf("matches(%q, %q) = %v, want %v", c.path, c.pattern, got, c.match)
			}
		})
	}
}

func TestProductToken(t *testing.T) {
	for ua, want := range map[string]string{
		"Mozilla/5.0 (compatible)": "Mozilla",
		"my_crawler-2 (+http://x)": "my_crawler-",
		"Scrapy/2.11":              "Scrapy",
		"":                         "",
	} {
		if got := ProductToken(ua); got != want {
			t.Errorf("ProductToken(%q) = %q, want %q", ua, got, want)
		}
	}
}

func TestDelays(t *testing.T) {
	for v, want := range map[string]time.Duration{"2": 2 * time.Second, "0.25": 250 * time.Millisecond, "abc": 0, "-1": 0, "NaN": 0} {
		t.Run("Crawl-delay "+v, func(t *testing.T) {
			r := Parse([]byte("User-agent: *\nCrawl-delay: " + v + "\n"))
			if got := r.For("x").CrawlDelay(); got != want {
				t.Errorf("Crawl-delay %q = %v, want %v", v, got, want)
			}
		})
	}
	for v, want := range map[string]time.Duration{"10/1m": 6 * time.Second, "2/1s": 500 * time.Millisecond, "0/5": 0, "x": 0} {
		t.Run("Request-rate "+v, func(t *testing.T) {
			r := Parse([]byte("User-agent: *\nRequest-rate: " + v + "\n"))
			if got := r.For("x").CrawlDelay(); got != want {
				t.Errorf("Request-rate %q = %v, want %v", v, got, want)
			}
		})
	}
}

func TestSizeCap(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("User-agent: *\n")
	for b.Len() < MaxSize-100 {
		b.WriteString("Disallow: /filler-line-that-matches-nothing\n")
	}
	b.WriteString("Disallow: /within-cap\n")
	for b.Len() < MaxSize+100 {
		b.WriteString("#")
	}
	b.WriteString("\nDisallow: /beyond-cap\n")
	r := Parse(b.Bytes())
	if r.Allowed("x", "/within-cap") {
		t.Error("a rule within the first 512 KiB was ignored")
	}
	if !r.Allowed("x", "/beyond-cap") {
		t.Error("a rule beyond the size cap was applied")
	}
}

func BenchmarkAllowedCached(b *testing.B) {
	var body strings.Builder
	body.WriteString("User-agent: *\n")
	for i := range 200 {
		fmt.Fprintf(&body, "Disallow: /section%d/*.php$\nAllow: /section%d/public\n", i, i)
	}
	g := Parse([]byte(body.String())).For("crawler")
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		_ = g.Allowed("/section150/page-" + strings.Repeat("x", i%8) + ".html?q=1")
	}
}

func BenchmarkParse500KiB(b *testing.B) {
	var body bytes.Buffer
	for body.Len() < 500<<10 {
		fmt.Fprintf(&body, "User-agent: bot%d\nDisallow: /a/%d/*.html$\nAllow: /a/%d/ok\n", body.Len(), body.Len(), body.Len())
	}
	b.SetBytes(int64(body.Len()))
	b.ResetTimer()
	for range b.N {
		_ = Parse(body.Bytes())
	}
}

// BenchmarkHostilePattern: a 500 KiB rule of wildcards against a 4 KiB path. With leftmost segment
// matching a lookup stays near linear; a position-set matcher would do about 2e9 steps.
func BenchmarkHostilePattern(b *testing.B) {
	g := Parse([]byte("User-agent: *\nDisallow: /" + strings.Repeat("*a", 250<<10) + "$\n")).For("x")
	path := "/" + strings.Repeat("ab", 2048)
	for range b.N {
		_ = g.Allowed(path)
	}
}
