package policy

import (
	"net/netip"
	"testing"
)

// TestRegistrableDomain: Public Suffix cases, each through Normalize as a request's host goes.
func TestRegistrableDomain(t *testing.T) {
	cases := []struct{ authority, want string }{
		{"example.com", "example.com"},
		{"www.Example.COM", "example.com"},
		{"a.b.c.example.com:8443", "example.com"},
		// multi-label public suffixes
		{"a.b.example.co.uk", "example.co.uk"},
		{"c.example.co.uk", "example.co.uk"},
		{"www.city.kawasaki.jp", "city.kawasaki.jp"}, // an exception rule (!city.kawasaki.jp)
		{"a.b.kawasaki.jp", "a.b.kawasaki.jp"},       // a wildcard rule (*.kawasaki.jp)
		// the private section: each tenant is a site of its own
		{"alice.github.io", "alice.github.io"},
		{"x.alice.github.io", "alice.github.io"},
		// public suffixes and single labels have no registrable domain: themselves
		{"co.uk", "co.uk"},
		{"github.io", "github.io"},
		{"localhost", "localhost"},
		{"com", "com"},
		// unknown suffixes: the default rule "*", so the last two labels
		{"a.b.example.test", "example.test"},
		{"x.y.internal.", "y.internal"},
		{"shop.sharedhost.example", "sharedhost.example"},
		// trailing dots, IDN (Unicode or punycode, one key)
		{"www.example.co.uk.", "example.co.uk"},
		{"www.Bücher.de", "xn--bcher-kva.de"},
		{"www.xn--bcher-kva.de", "xn--bcher-kva.de"},
		{"shop.пример.рф", "xn--e1afmkfd.xn--p1ai"},
		{"a.b.食狮.公司.cn", "xn--85x722f.xn--55qx5d.cn"}, // an IDN public suffix (公司.cn)
		// IP literals group as themselves
		{"192.0.2.1:8080", "192.0.2.1"},
		{"[2001:db8::1]", "[2001:db8::1]"},
		{"[::ffff:192.0.2.1]", "192.0.2.1"},
	}
	for _, c := range cases {
		t.Run(c.authority, func(t *testing.T) { // the authority is the case's name
			h, _, err := Normalize(c.authority, "https")
			if err != nil {
				t.Fatalf("Normalize(%q): %v", c.authority, err)
			}
			if got := RegistrableDomain(h); got != c.want {
				t.Errorf("RegistrableDomain(%q) = %q, want %q", c.authority, got, c.want)
			}
		})
	}
}

func TestGroupKey(t *testing.T) {
	v4 := netip.MustParseAddr("192.0.2.7")
	cases := []struct {
		name      string
		g         Group
		authority string
		addr      netip.Addr
		want      string
	}{
		{"host is the host key", GroupHost, "a.example.com:8443", v4, "a.example.com:8443"},
		{"host ignores the address", GroupHost, "a.example.com", v4, "a.example.com"},
		{"domain ignores the port", GroupDomain, "a.example.co.uk:8443", netip.Addr{}, "domain:example.co.uk"},
		{"domain of an IP literal", GroupDomain, "192.0.2.1", netip.Addr{}, "domain:192.0.2.1"},
		{"ipv4 by address", GroupIP, "a.example.com:8080", v4, "ip:192.0.2.7"},
		{"ipv4-mapped is ipv4", GroupIP, "a.example.com", netip.MustParseAddr("::ffff:192.0.2.7"), "ip:192.0.2.7"},
		{"ipv6 by /64", GroupIP, "a.example.com", netip.MustParseAddr("2001:db8:1:2:aaaa::1"), "ip:2001:db8:1:2::/64"},
		{"ipv6 same /64", GroupIP, "b.example.com", netip.MustParseAddr("2001:db8:1:2:ffff::9"), "ip:2001:db8:1:2::/64"},
		{"ipv6 zone dropped", GroupIP, "b.example.com", netip.MustParseAddr("fe80::1%eth0"), "ip:fe80::/64"},
		{"ip literal is its own address", GroupIP, "[2001:db8::5]:8443", netip.Addr{}, "ip:2001:db8::/64"},
		{"ip without an address falls back to the host", GroupIP, "a.example.com:8080", netip.Addr{}, "a.example.com:8080"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, p, err := Normalize(c.authority, "https")
			if err != nil {
				t.Fatal(err)
			}
			if got := GroupKey(c.g, h, p, c.addr); got != c.want {
				t.Errorf("GroupKey(%v, %q) = %q, want %q", c.g, c.authority, got, c.want)
			}
		})
	}
}

// TestGroupStricter: between equally specific rules, the broader group wins.
func TestGroupStricter(t *testing.T) {
	p, err := Parse([]byte("rules:\n  - hosts: ['*.example.com']\n    groupBy: domain\n  - hosts: ['*.example.com']\n    groupBy: host\n" +
		"  - hosts: ['*.example.org']\n    groupBy: ip\n  - hosts: ['*.example.org']\n    groupBy: domain\n"))
	if err != nil {
		t.Fatal(err)
	}
	if g := p.For("a.example.com", "").GroupBy; g != GroupDomain {
		t.Errorf("a.example.com: %v, want domain", g)
	}
	if g := p.For("a.example.org", "").GroupBy; g != GroupIP {
		t.Errorf("a.example.org: %v, want ip", g)
	}
	if g := p.For("other.net", "").GroupBy; g != GroupHost {
		t.Errorf("other.net: %v, want host", g)
	}
}
