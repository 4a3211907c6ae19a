package controller

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crawlpolite/crawlpolite/api/v1alpha1"
	"github.com/crawlpolite/crawlpolite/internal/policy"
)

func cp(name string, rules ...v1alpha1.Rule) v1alpha1.CrawlPolicy {
	return v1alpha1.CrawlPolicy{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.CrawlPolicySpec{Rules: rules}}
}

func rule(conc int32, delay string, hosts ...v1alpha1.HostPattern) v1alpha1.Rule {
	r := v1alpha1.Rule{Hosts: hosts, MaxConcurrency: &conc}
	if delay != "" {
		d := v1alpha1.Duration(delay)
		r.MinDelay = &d
	}
	return r
}

func TestCompile(t *testing.T) {
	base, err := policy.ParseDocument([]byte("defaults:\n  maxConcurrency: 3\n  minDelay: 2s\nrules:\n  - hosts: [\"base.example\"]\n    maxConcurrency: 9\n"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := compile(base, []v1alpha1.CrawlPolicy{
		cp("b-strict", rule(1, "", "shared.example")),
		cp("a-news", rule(5, "300ms", "news.example", "shared.example"), rule(2, "", "*.news.example")),
		cp("c-same", rule(5, "300ms", "News.Example")), // same values as a-news: no conflict
		cp("d-bad", rule(4, "", "bad..host")),
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse(c.data)
	if err != nil {
		t.Fatalf("compiled document does not parse: %v\n%s", err, c.data)
	}
	for _, tc := range []struct {
		host  string
		conc  int
		delay time.Duration
	}{
		{"news.example", 5, 300 * time.Millisecond},
		{"a.news.example", 2, 2 * time.Second}, // unset fields inherit the base defaults
		{"shared.example", 1, 2 * time.Second}, // equals: the stricter value of each field
		{"base.example", 9, 2 * time.Second},   // the base document's own rules come first
		{"other.example", 3, 2 * time.Second},
	} {
		t.Run(tc.host, func(t *testing.T) { // the host is the case's name
			if l := p.For(tc.host, ""); l.MaxConcurrency != tc.conc || l.MinDelay != tc.delay {
				t.Errorf("%+v, want concurrency %d delay %v", l, tc.conc, tc.delay)
			}
		})
	}
	if err := c.invalid["d-bad"]; err == nil || !strings.Contains(err.Error(), "bad..host") {
		t.Errorf("invalid policy: %v", err)
	}
	if strings.Contains(string(c.data), "bad..host") {
		t.Error("an invalid policy reached the document")
	}
	if got := strings.Join(c.conflicts["a-news"], ";"); got != "shared.example (also in b-strict)" {
		t.Errorf("a-news conflicts %q", got)
	}
	if got := strings.Join(c.conflicts["b-strict"], ";"); got != "shared.example (also in a-news)" {
		t.Errorf("b-strict conflicts %q", got)
	}
	if len(c.conflicts["c-same"]) != 0 {
		t.Errorf("identical values reported as a conflict: %v", c.conflicts["c-same"])
	}
	again, _ := compile(base, []v1alpha1.CrawlPolicy{cp("d-bad", rule(4, "", "bad..host")), cp("c-same", rule(5, "300ms", "News.Example")),
		cp("a-news", rule(5, "300ms", "news.example", "shared.example"), rule(2, "", "*.news.example")), cp("b-strict", rule(1, "", "shared.example"))})
	if string(again.data) != string(c.data) {
		t.Error("the document depends on the order CrawlPolicies were listed in")
	}
}

// TestCompileGroupBy: a rule's groupBy reaches the compiled document, and two CrawlPolicies that
// differ only in it are a conflict (the broader group applies).
func TestCompileGroupBy(t *testing.T) {
	grouped := func(g string, hosts ...v1alpha1.HostPattern) v1alpha1.Rule {
		r := rule(4, "250ms", hosts...)
		r.GroupBy = &g
		return r
	}
	c, err := compile(policy.Document{}, []v1alpha1.CrawlPolicy{
		cp("blog", grouped("domain", "*.example-blog.com")),
		cp("shared", grouped("ip", "*.sharedhost.example")),
		cp("shared-too", grouped("host", "*.sharedhost.example")),
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse(c.data)
	if err != nil {
		t.Fatalf("compiled document does not parse: %v\n%s", err, c.data)
	}
	for host, want := range map[string]policy.Group{"a.example-blog.com": policy.GroupDomain, "a.sharedhost.example": policy.GroupIP,
		"other.example": policy.GroupHost} {
		if l := p.For(host, ""); l.GroupBy != want || (want != policy.GroupHost && l.MaxConcurrency != 4) {
			t.Errorf("%s: %+v, want groupBy %v", host, l, want)
		}
	}
	if !strings.Contains(string(c.data), "groupBy: domain") {
		t.Errorf("groupBy not written:\n%s", c.data)
	}
	if got := strings.Join(c.conflicts["shared"], ";"); got != "*.sharedhost.example (also in shared-too)" {
		t.Errorf("shared conflicts %q", got)
	}
}
