package policy

import (
	"strings"
	"testing"
	"time"
)

// TestExplain names the rule behind each limit: the most specific rule for the fields it sets, the
// defaults or the built-in values for the rest, both rules where equally specific ones combine.
func TestExplain(t *testing.T) {
	p, err := Parse([]byte(`defaults:
  minDelay: 500ms
rules:
  - hosts: ["*.example.com"]
    maxConcurrency: 8
  - hosts: [shop.example.com]
    maxConcurrency: 1
    maxCrawlDelay: 5s
  - hosts: [shop.example.com]
    maxConcurrency: 4
    waitTimeout: 10s
`))
	if err != nil {
		t.Fatal(err)
	}
	e := p.Explain("shop.example.com", "")
	if e.HostPolicy != p.For("shop.example.com", "") {
		t.Fatalf("Explain's limits %+v differ from For's", e.HostPolicy)
	}
	if e.HostPolicy.MaxConcurrency != 1 || e.HostPolicy.MaxCrawlDelay != 30*time.Second || e.HostPolicy.WaitTimeout != 10*time.Second {
		t.Fatalf("limits %+v", e.HostPolicy)
	}
	for field, want := range map[string]string{
		"maxConcurrency": "rule at line 6 (shop.example.com)",
		"maxCrawlDelay":  "built-in default", // the other rule's inherited 30s is the stricter (longer) cap
		"waitTimeout":    "rule at line 9 (shop.example.com)",
		"minDelay":       "defaults",
		"robots":         "built-in default",
	} {
		if got := e.Source[field]; got != want {
			t.Errorf("%s: source %q, want %q", field, got, want)
		}
	}
	if len(e.Rules) != 2 {
		t.Errorf("rules %v: want the two equally specific ones", e.Rules)
	}
	if w := p.Explain("www.example.com", ""); w.Source["maxConcurrency"] != "rule at line 4 (*.example.com)" {
		t.Errorf("wildcard: %v", w.Source)
	}
	if o := p.Explain("other.test", ""); len(o.Rules) != 0 || !strings.Contains(o.String(), "maxConcurrency: 2 (built-in default)") {
		t.Errorf("no rule: %v\n%s", o.Rules, o)
	}
}
