package policy

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse: any document parses or fails with ErrInvalid, never panics; one that parses is
// written by Marshal into a document that parses to the same limits.
func FuzzParse(f *testing.F) {
	f.Add([]byte(doc))
	f.Add([]byte(""))
	f.Add([]byte("defaults:\n  minDelay: 1.5s\n  robots: ignore\nrules:\n  - hosts: [\"example.com\", \"*.example.org\"]\n    tls: tunnel\n"))
	f.Add([]byte("rules:\n  - hosts: ['[::1]:8080', 'xn--bcher-kva.example']\n    maxConcurrency: 10000\n"))
	f.Add([]byte("defaults: &d\n  minDelay: 1s\nrules:\n  - hosts: [a.com]\n    <<: *d\n"))
	f.Add([]byte("- 1\n"))
	f.Add([]byte("defaults:\n  groupBy: domain\nrules:\n  - hosts: [\"*.example.co.uk\"]\n    groupBy: ip\n  - hosts: [a.test]\n    groupBy: host\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error without ErrInvalid: %v", err)
			}
			return
		}
		d, err := ParseDocument(data)
		if err != nil {
			t.Fatalf("Parse accepted, ParseDocument did not: %v", err)
		}
		out, err := d.Marshal()
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		p2, err := Parse(out)
		if err != nil {
			t.Fatalf("marshalled document does not parse: %v\n%s", err, out)
		}
		hosts := []string{"other.invalid"}
		for _, r := range d.Rules {
			for _, h := range r.Hosts {
				h = strings.TrimSpace(h)
				hosts = append(hosts, h, "x."+strings.TrimPrefix(h, "*."))
			}
		}
		for _, a := range hosts {
			h, port, err := Normalize(a, "https")
			if err != nil {
				continue
			}
			if l1, l2 := p.For(h, port), p2.For(h, port); l1 != l2 {
				t.Fatalf("%s: %+v before Marshal, %+v after\n%s", a, l1, l2, out)
			}
		}
	})
}

// FuzzNormalize: Normalize is idempotent (its output, as a key, normalizes to itself), its hosts are
// lower-case ASCII, and the host's URL parses back to the same host.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"Example.COM", "example.com:80", "[::1]:8080", "[2001:DB8::1]", "[::ffff:1.2.3.4]",
		"127.0.0.1:443", "Bücher.example", "xn--bcher-kva.example", "a_b.example.", "[fe80::1%25eth0]", "example.com:0080",
		"ⓔⓧⓐⓜⓟⓛⓔ.com", "faß.de", "xn--zca.de", "example.com:", "1.2.3", "0x7f.1"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, authority string, https bool) {
		scheme := "http"
		if https {
			scheme = "https"
		}
		h, p, err := Normalize(authority, scheme)
		if err != nil {
			return
		}
		if h == "" || h != strings.ToLower(h) || !utf8.ValidString(h) || strings.ContainsFunc(h, func(r rune) bool { return r > 0x7e || r <= ' ' }) {
			t.Fatalf("Normalize(%q) = host %q", authority, h)
		}
		key := Key(h, p)
		h2, p2, err := Normalize(key, scheme)
		if err != nil || h2 != h || p2 != p {
			t.Fatalf("Normalize(%q) = %q %q; Normalize(%q) = %q %q %v", authority, h, p, key, h2, p2, err)
		}
		u, err := url.Parse(scheme + "://" + key + "/robots.txt")
		if err != nil {
			t.Fatalf("Normalize(%q): URL of %q does not parse: %v", authority, key, err)
		}
		if h3, p3, err := Normalize(u.Host, scheme); err != nil || h3 != h || p3 != p {
			t.Fatalf("Normalize(%q) = %q %q; its URL's host %q gives %q %q %v", authority, h, p, u.Host, h3, p3, err)
		}
	})
}
