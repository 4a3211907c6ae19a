package robots

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestLookupAgreesWithNaive: the indexed lookup gives the verdict of scanning every rule in
// priority order, on random files and paths over a small alphabet (so that rules do match).
func TestLookupAgreesWithNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "ab/*$%2A"
	word := func(n int) string {
		var b strings.Builder
		for range rng.IntN(n) + 1 {
			b.WriteByte(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	for i := range 3000 {
		var body strings.Builder
		for range rng.IntN(4) + 1 {
			body.WriteString([]string{"User-agent: *\n", "User-agent: bot\n", "User-agent: other\n"}[rng.IntN(3)])
			for range rng.IntN(8) {
				body.WriteString([]string{"Allow: /", "Disallow: /"}[rng.IntN(2)] + word(6) + "\n")
			}
		}
		r := Parse([]byte(body.String()))
		naive := naiveRules(r, "bot")
		g := r.For("bot")
		for range 20 {
			path := "/" + strings.NewReplacer("*", "", "$", "").Replace(word(10))
			v := g.Check(path)
			if want := naiveAllowed(naive, path); v.Exhausted || v.Allowed != want {
				t.Fatalf("case %d: Check(%q) = %+v, want allowed %v\n%s", i, path, v, want, body.String())
			}
		}
	}
}

// TestWorkBound: the costliest lookups end within MaxMatchWork; those the budget cannot decide say
// Exhausted (the same on every run), and a benign path on the same file is still decided.
func TestWorkBound(t *testing.T) {
	for _, c := range worstCases() {
		t.Run(c.name, func(t *testing.T) {
			g := Parse([]byte(c.body)).For("bot")
			v := g.Check(c.path)
			for range 3 {
				if again := g.Check(c.path); again != v {
					t.Fatalf("verdict %+v then %+v", v, again)
				}
			}
			if v.Exhausted && v.Allowed {
				t.Fatal("exhausted but allowed")
			}
			if b := g.Check("/index.html"); b.Exhausted {
				t.Error("a short path exhausted the budget")
			}
			t.Logf("%+v rule %q", v, v.Rule())
		})
	}
	v := Parse([]byte(worstCases()[1].body)).For("bot").Check(worstCases()[1].path)
	if !v.Exhausted {
		t.Errorf("distinct wildcards against a matching 8 KiB path: %+v, want Exhausted", v)
	}
}

func TestVerdictRule(t *testing.T) {
	g := Parse([]byte("User-agent: *\nDisallow: /private\nAllow: /private/ok$\nDisallow: /*.php\n")).For("x")
	for path, want := range map[string]string{
		"/private/x": "disallow: /private", "/private/ok": "allow: /private/ok$", "/a.php": "disallow: /*.php", "/": "",
	} {
		if got := g.Check(path).Rule(); got != want {
			t.Errorf("Check(%q).Rule() = %q, want %q", path, got, want)
		}
	}
}
