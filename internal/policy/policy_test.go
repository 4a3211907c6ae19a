package policy

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

const doc = `defaults:
  maxConcurrency: 2
  minDelay: 1s
  maxCrawlDelay: 30s
  robots: enforce
  waitTimeout: 60s
  tls: intercept
rules:
  - hosts: ["example.com", "*.example.org"]
    maxConcurrency: 4
    minDelay: 250ms
  - hosts: ["api.example.org"]
    maxConcurrency: 8
  - hosts: ["example.com:8443"]
    tls: tunnel
  - hosts: ["*.example.org"]
    maxConcurrency: 3
    minDelay: 100ms
    robots: ignore
  - hosts: ["Bücher.Example"]
    minDelay: 5s
`

func TestFor(t *testing.T) {
	p, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		authority, scheme string
		want              HostPolicy
	}{
		{"other.net", "https", HostPolicy{2, time.Second, 30 * time.Second, true, time.Minute, false, GroupHost}},
		{"EXAMPLE.com:443", "https", HostPolicy{4, 250 * time.Millisecond, 30 * time.Second, true, time.Minute, false, GroupHost}},
		{"example.com:8443", "https", HostPolicy{2, time.Second, 30 * time.Second, true, time.Minute, true, GroupHost}}, // port beats no port
		// two equally specific wildcard rules: the stricter value of each field
		{"www.example.org", "http", HostPolicy{3, 250 * time.Millisecond, 30 * time.Second, true, time.Minute, false, GroupHost}},
		{"api.example.org", "https", HostPolicy{8, time.Second, 30 * time.Second, true, time.Minute, false, GroupHost}}, // exact beats wildcard
		{"example.org", "https", HostPolicy{2, time.Second, 30 * time.Second, true, time.Minute, false, GroupHost}},     // *.x is subdomains only
		{"xn--bcher-kva.example", "https", HostPolicy{2, 5 * time.Second, 30 * time.Second, true, time.Minute, false, GroupHost}},
	}
	for _, c := range cases {
		t.Run(c.authority, func(t *testing.T) { // the authority is the case's name
			h, port, err := Normalize(c.authority, c.scheme)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.For(h, port); got != c.want {
				t.Errorf("%s: %+v, want %+v", c.authority, got, c.want)
			}
		})
	}
	if !p.Named("api.example.org", "") || p.Named("www.example.org", "") {
		t.Error("Named should hold for hosts named exactly, not for wildcard matches")
	}
}

func TestParseErrorsNameTheLine(t *testing.T) {
	cases := map[string]struct{ body, want string }{
		"unknown key":     {"defaults:\n  maxConcurrency: 2\n  minDelai: 1s\n", "line 3"},
		"bad duration":    {"defaults:\n  minDelay: soon\n", "line 2"},
		"negative delay":  {"defaults:\n  minDelay: -1s\n", "line 2"},
		"zero limit":      {"rules:\n  - hosts: [a.com]\n    maxConcurrency: 0\n", "line 3: maxConcurrency"},
		"negative limit":  {"defaults:\n  minDelay: 1s\n  maxConcurrency: -1\n", "line 3: maxConcurrency"},
		"bad robots":      {"defaults:\n  robots: sometimes\n", "line 2: robots"},
		"bad pattern":     {"rules:\n  - hosts: ['a*.com']\n", "line 2"},
		"no hosts":        {"rules:\n  - maxConcurrency: 3\n", "line 2"},
		"empty label":     {"rules:\n  - hosts: ['a..com']\n", "line 2"},
		"bad port":        {"rules:\n  - hosts: ['a.com:99999']\n", "line 2"},
		"bad tls":         {"rules:\n  - hosts: [a.com]\n    tls: maybe\n", "line 3: tls"},
		"not a mapping":   {"- 1\n- 2\n", "line 1"},
		"zero waitTimout": {"defaults:\n  waitTimeout: 0s\n", "line 2: waitTimeout"},
		"bad groupBy":     {"rules:\n  - hosts: [a.com]\n    maxConcurrency: 2\n    groupBy: site\n", "line 4: groupBy"},
		"bad default grp": {"defaults:\n  groupBy: IP\n", "line 2: groupBy"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(c.body))
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want ErrInvalid mentioning %q", err, c.want)
			}
		})
	}
	if p, err := Parse(nil); err != nil || p.For("x.com", "") != BuiltinDefaults {
		t.Errorf("empty document: %v", err)
	}
}

func TestNormalize(t *testing.T) {
	cases := []struct{ in, scheme, host, port string }{
		{"Example.COM", "http", "example.com", ""},
		{"example.com:80", "http", "example.com", ""},
		{"example.com:443", "http", "example.com", "443"},
		{"example.com.", "https", "example.com", ""},
		{"[::1]:8080", "http", "[::1]", "8080"},
		{"[2001:DB8::1]", "https", "[2001:db8::1]", ""},
		{"127.0.0.1:443", "https", "127.0.0.1", ""},
		{"Bücher.example", "https", "xn--bcher-kva.example", ""},
		// IPv4-mapped IPv6 is the IPv4 address: one host, one key (issue 10 item 11)
		{"[::ffff:1.2.3.4]", "http", "1.2.3.4", ""},
		{"[::FFFF:1.2.3.4]:8080", "http", "1.2.3.4", "8080"},
		{"[::ffff:102:304]:443", "https", "1.2.3.4", ""},
		{"::1", "http", "[::1]", ""},
		{"example.com:0080", "http", "example.com", ""},
		{"example.com:08443", "https", "example.com", "8443"},
		{"example.com:", "http", "example.com", ""},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) { // the input is the case's name
			h, p, err := Normalize(c.in, c.scheme)
			if err != nil || h != c.host || p != c.port {
				t.Errorf("Normalize(%q) = %q %q %v, want %q %q", c.in, h, p, err, c.host, c.port)
			}
		})
	}
	for _, bad := range []string{"exa mple.com", "example.com:0", "example.com:99999", "",
		"[fe80::1%eth0]", "[fe80::1%25eth0]:80", "fe80::1%eth0", // zones
		"a..example", ".example.com", "example.com..", // empty labels
		"\xffexample.com", "b\xc3\x28.com", // invalid UTF-8
		"[example.com]", "[1.2.3.4]", "[::1", "::1]", "[[::1]]", // brackets only around IPv6
		strings.Repeat("a", 64) + ".com", strings.Repeat("abcdefghi.", 26) + "com", // DNS lengths
		"example.com:+80", "example.com:-1", "%41.com",
	} {
		if _, _, err := Normalize(bad, "http"); err == nil {
			t.Errorf("Normalize(%q) accepted", bad)
		}
	}
	if k := Key("[::1]", "8080"); k != "[::1]:8080" {
		t.Errorf("Key = %q", k)
	}
	// What the robots URL and the semaphore key are made of parses back to the same host.
	for _, in := range []string{"[::ffff:1.2.3.4]", "[::ffff:1.2.3.4]:8080", "[2001:db8::1]:8443", "[::1]"} {
		h, p, err := Normalize(in, "https")
		if err != nil {
			t.Fatalf("Normalize(%q): %v", in, err)
		}
		u, err := url.Parse("https://" + Key(h, p) + "/robots.txt")
		if err != nil {
			t.Errorf("%s: robots URL does not parse: %v", in, err)
			continue
		}
		if h2, p2, err := Normalize(u.Host, "https"); err != nil || h2 != h || p2 != p {
			t.Errorf("%s: URL host %q normalizes to %q %q %v, want %q %q", in, u.Host, h2, p2, err, h, p)
		}
	}
}

func TestDelay(t *testing.T) {
	l := HostPolicy{MinDelay: time.Second, MaxCrawlDelay: 10 * time.Second}
	for _, c := range []struct {
		name        string
		crawl, want time.Duration
	}{
		{"no Crawl-delay", 0, time.Second},
		{"Crawl-delay above minDelay", 3 * time.Second, 3 * time.Second},
		{"Crawl-delay capped", time.Hour, 10 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := l.Delay(c.crawl); got != c.want {
				t.Errorf("Delay(%v) = %v, want %v", c.crawl, got, c.want)
			}
		})
	}
}

// TestMarshalRoundTrip: a document written by Marshal parses back to the same limits.
func TestMarshalRoundTrip(t *testing.T) {
	src := "defaults:\n  maxConcurrency: 3\n  minDelay: 1.5s\n  robots: ignore\n  groupBy: domain\nrules:\n  - hosts: [\"example.com\", \"*.example.org\"]\n    minDelay: 250ms\n    tls: tunnel\n    groupBy: ip\n"
	doc, err := ParseDocument([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	out, err := doc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	a, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse(out)
	if err != nil {
		t.Fatalf("marshalled document does not parse: %v\n%s", err, out)
	}
	for _, h := range []string{"example.com", "a.example.org", "other.net"} {
		if a.For(h, "") != b.For(h, "") {
			t.Errorf("%s: %+v before, %+v after\n%s", h, a.For(h, ""), b.For(h, ""), out)
		}
	}
	if a.For("example.com", "").GroupBy != GroupIP || a.For("other.net", "").GroupBy != GroupDomain {
		t.Errorf("groupBy not read: %+v, %+v", a.For("example.com", ""), a.For("other.net", ""))
	}
	if !strings.Contains(string(out), "minDelay: 250ms") {
		t.Errorf("durations not written as strings:\n%s", out)
	}
}
