package robots

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// letters spells i in base 26 with the letters a-z: agent tokens are letters, '-' and '_' only.
func letters(i int) string {
	var b []byte
	for {
		b = append(b, byte('a'+i%26))
		i /= 26
		if i == 0 {
			return string(b)
		}
	}
}

// sizeBound is the most heap a Rules within the caps can hold: the arena, the rule, agent and group
// records (every group has an agent), and the memo of For (at most maxAgentsCached merged groups,
// each at most a copy of the rule records and its indexes).
func sizeBound() int {
	const rec = 12 // a rule or a span record, padded
	return allocSize(maxArena) + allocSize(MaxRules*rec) + allocSize(MaxAgents*8) + allocSize(MaxAgents*24) +
		8*(allocSize(MaxRules*rec)+3*allocSize(MaxRules*4)+4096)
}

// TestParseCannotReachCaps: the densest body Parse reads (MaxSize bytes of the shortest rule lines,
// or of the shortest user-agent lines) stays below MaxRules and MaxAgents, so for a fetched file the
// caps change nothing: every line of its first MaxSize bytes counts.
func TestParseCannotReachCaps(t *testing.T) {
	body := []byte("user-agent:*\n" + strings.Repeat("allow:a\n", MaxSize/8))
	r := Parse(body)
	if want := (MaxSize - len("user-agent:*\n")) / 8; len(r.rules) != want || want >= MaxRules {
		t.Errorf("densest rules: %d rules kept, want every one of the %d in MaxSize (MaxRules %d)", len(r.rules), want, MaxRules)
	}
	body = []byte(strings.Repeat("useragent a\n", MaxSize/12+1))
	r = Parse(body)
	if want := MaxSize / 12; len(r.agents) != want || want >= MaxAgents {
		t.Errorf("densest agents: %d agents kept, want every one of the %d in MaxSize (MaxAgents %d)", len(r.agents), want, MaxAgents)
	}
}

// TestRulesCap (issue 10: MaxRules bounds what UnmarshalText accepts from the shared cache): a file
// with more than MaxRules rules keeps its first MaxRules, in file order, and skips the rest as
// lines it cannot read (what follows them, delays and other groups, still counts); its heap stays
// within the bound of a capped file; verdicts are those of the kept rules.
func TestRulesCap(t *testing.T) {
	const extra = 1000
	var b bytes.Buffer
	b.WriteString("user-agent: *\n")
	for i := range MaxRules + extra {
		fmt.Fprintf(&b, "disallow: /p%d/\n", i)
	}
	tail := "crawl-delay: 7\nuser-agent: late\ndisallow: /late\ncrawl-delay: 3\n"
	full := b.String() + tail
	capped := full[:strings.Index(full, fmt.Sprintf("disallow: /p%d/\n", MaxRules))] + tail
	var r, c Rules
	if err := r.UnmarshalText([]byte(full)); err != nil {
		t.Fatal(err)
	}
	if err := c.UnmarshalText([]byte(capped)); err != nil {
		t.Fatal(err)
	}
	if len(r.rules) != MaxRules {
		t.Fatalf("%d rules kept, want MaxRules (%d)", len(r.rules), MaxRules)
	}
	// The rules beyond the cap cost nothing: not in the arena, not in the records.
	if len(r.text) != len(c.text) || r.Size() != c.Size() {
		t.Errorf("arena %d bytes, Size %d; the same file cut at the cap: %d, %d", len(r.text), r.Size(), len(c.text), c.Size())
	}
	g := r.For("bot")
	for _, tc := range []struct {
		path  string
		allow bool
	}{
		{"/p0/x", false}, // the first rule
		{fmt.Sprintf("/p%d/x", MaxRules-1), false},      // the last one kept
		{fmt.Sprintf("/p%d/x", MaxRules), true},         // the first one beyond the cap
		{fmt.Sprintf("/p%d/x", MaxRules+extra-1), true}, // the last one
		{"/other", true},
	} {
		if v := g.Check(tc.path); v.Allowed != tc.allow || v.Exhausted {
			t.Errorf("Check(%q) = %+v, want allowed %v", tc.path, v, tc.allow)
		}
	}
	if size, bound := r.Size(), sizeBound(); size > bound {
		t.Errorf("Size %d (with a merged group memoised) beyond the bound of a capped file, %d", size, bound)
	}
	t.Logf("capped file: arena %d bytes, Size %d (bound %d)", len(r.text), r.Size(), sizeBound())
	if d := g.CrawlDelay(); d != 7*time.Second {
		t.Errorf("crawl-delay after the cap: %v, want 7s", d)
	}
	// The next group has its agent and its delay, but no rule: the cap is reached.
	late := r.For("late")
	if v := late.Check("/late"); !v.Allowed {
		t.Errorf("late group: /late refused by a rule beyond the cap")
	}
	if d := late.CrawlDelay(); d != 3*time.Second {
		t.Errorf("late group: crawl-delay %v, want 3s", d)
	}
	if v := late.Check("/p0/x"); !v.Allowed {
		t.Errorf("late group: the * group's rules apply to it")
	}
}

// TestAgentsCap (issue 10: MaxAgents): a file with more than MaxAgents user-agent lines keeps the
// first MaxAgents; a group whose every user-agent line is beyond the cap is dropped whole: its
// rules and delay apply to no one, not to the group before it; a user-agent line beyond the cap in a
// group started within it leaves that group's rules to its agents. The heap stays bounded.
func TestAgentsCap(t *testing.T) {
	var b bytes.Buffer
	// MaxAgents-1 agents in one group, each line a token of its own.
	b.WriteString("user-agent: *\n")
	for i := 1; i < MaxAgents-1; i++ {
		fmt.Fprintf(&b, "user-agent: x%s\n", letters(i))
	}
	b.WriteString("disallow: /star\n")
	// The last agent within the cap starts a group, then one beyond it joins that group.
	b.WriteString("user-agent: last\nuser-agent: over\ndisallow: /last\n")
	// Groups beyond the cap: their rules must not land in "last"'s group.
	for i := range 1000 {
		fmt.Fprintf(&b, "user-agent: beyond%s\ndisallow: /\ncrawl-delay: 9\n", letters(i))
	}
	var r Rules
	if err := r.UnmarshalText(b.Bytes()); err != nil {
		t.Fatal(err)
	}
	if len(r.agents) != MaxAgents {
		t.Fatalf("%d agents kept, want MaxAgents (%d)", len(r.agents), MaxAgents)
	}
	if size, bound := r.Size(), sizeBound(); size > bound {
		t.Errorf("Size %d beyond the bound of a capped file, %d", size, bound)
	}
	last := r.For("last")
	for _, tc := range []struct {
		path  string
		allow bool
	}{
		{"/last", false}, // its own rule, after a user-agent line beyond the cap
		{"/star", true},
		{"/anything", true}, // not a dropped group's disallow: /
	} {
		if v := last.Check(tc.path); v.Allowed != tc.allow {
			t.Errorf("last: Check(%q) allowed %v, want %v", tc.path, v.Allowed, tc.allow)
		}
	}
	if d := last.CrawlDelay(); d != 0 {
		t.Errorf("last: crawl-delay %v, a dropped group's", d)
	}
	// Agents beyond the cap get the global group.
	for _, agent := range []string{"over", "beyonda", "unknown"} {
		g := r.For(agent)
		if v := g.Check("/star"); v.Allowed {
			t.Errorf("%s: /star allowed, want the * group's disallow", agent)
		}
		if v := g.Check("/anything"); !v.Allowed {
			t.Errorf("%s: /anything refused", agent)
		}
	}
}
