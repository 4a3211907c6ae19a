package robots

import (
	"testing"
	"time"
)

// TestEmptyValues: every directive with an empty, blank or malformed value is skipped without a
// panic (an empty Crawl-delay used to index strings.Fields of "" and kill the process).
func TestEmptyValues(t *testing.T) {
	bodies := []string{
		"User-agent: *\nCrawl-delay:\n",
		"User-agent: *\nCrawl-delay: \t \n",
		"User-agent: *\nRequest-rate:\n",
		"User-agent: *\nRequest-rate: /\n",
		"User-agent: *\nRequest-rate: 1/\n",
		"User-agent: *\nRequest-rate: /5m\n",
		"User-agent: *\nRequest-rate: 1/h\n",
		"User-agent: *\nRequest-rate: 99999999999999999999/1\n",
		"User-agent: *\nRequest-rate: 1/99999999999999999999h\n",
		"User-agent: *\nCrawl-delay: 1e308\nCrawl-delay: -0\nCrawl-delay: +1\nCrawl-delay: Inf\nCrawl-delay: 0x10\n",
		"User-agent: *\nCrawl-delay: .\nCrawl-delay: 1.2.3\nCrawl-delay: 1,5\n",
		"User-agent:\nDisallow:\nAllow:\n:\n::\n: :\n#\n",
		"User-agent: *\nDisallow: %\nAllow: %%\nDisallow: %4%41\n",
	}
	for _, b := range bodies {
		r := Parse([]byte(b))
		g := r.For("bot")
		if d := g.CrawlDelay(); d != 0 {
			t.Errorf("%q: delay %v from a malformed value", b, d)
		}
		_ = g.Allowed("/x")
	}
}

// TestDecimalDelays: delays are read as exact decimals, not through float64 (where 1.1s became
// 1.099999999s and 0.3 * 3 is not 0.9).
func TestDecimalDelays(t *testing.T) {
	for v, want := range map[string]time.Duration{
		"0.5": 500 * time.Millisecond, "1.25": 1250 * time.Millisecond, "1.1": 1100 * time.Millisecond,
		"4.35": 4350 * time.Millisecond, "1.001": 1001 * time.Millisecond, "1.009": 1009 * time.Millisecond, ".5": 500 * time.Millisecond, "3.": 3 * time.Second,
		"0.000000001": 1, "0.0000000019": 1, "007": 7 * time.Second, "1000000": 1e6 * time.Second,
		"1000000.5": 0, "2 # seconds": 2 * time.Second, "2s": 0,
	} {
		r := Parse([]byte("User-agent: *\nCrawl-delay: " + v + "\n"))
		if got := r.For("x").CrawlDelay(); got != want {
			t.Errorf("Crawl-delay %q = %v, want %v", v, got, want)
		}
	}
	for v, want := range map[string]time.Duration{
		"3/1": 333333333, "1/1.1": 1100 * time.Millisecond, "10/1.5m": 9 * time.Second,
		"0.5/1": 2 * time.Second, "1/0.3": 300 * time.Millisecond, "1/2h": 2 * time.Hour,
		"1/300h": 0, // beyond the bound
	} {
		r := Parse([]byte("User-agent: *\nRequest-rate: " + v + "\n"))
		if got := r.For("x").CrawlDelay(); got != want {
			t.Errorf("Request-rate %q = %v, want %v", v, got, want)
		}
	}
}
