package proxy

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

func TestGuardAllowed(t *testing.T) {
	g, err := NewGuard("10.1.0.0/16, 192.168.7.7")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]bool{
		"93.184.215.14":         true, // public
		"2606:2800:21f:cb07::1": true,
		"127.0.0.1":             false,
		"127.9.9.9":             false,
		"::1":                   false,
		"::ffff:127.0.0.1":      false, // IPv4-mapped loopback
		"169.254.169.254":       false, // cloud metadata
		"fd00:ec2::254":         false,
		"10.0.0.1":              false,
		"10.1.2.3":              true, // allowed range
		"192.168.7.7":           true, // allowed single address
		"192.168.7.8":           false,
		"172.16.5.5":            false,
		"100.64.1.1":            false, // carrier-grade NAT
		"0.0.0.0":               false,
		"::":                    false,
		"fe80::1":               false,
		"fc00::1":               false,
		"224.0.0.1":             false, // multicast
		"255.255.255.255":       false,
		// IPv6 forms that carry an IPv4 address (issue 10 item 6)
		"64:ff9b::a00:5":                       false, // NAT64 of 10.0.0.5
		"64:ff9b::7f00:1":                      false, // NAT64 of 127.0.0.1
		"64:ff9b::a9fe:a9fe":                   false, // NAT64 of 169.254.169.254
		"64:ff9b::5db8:d70e":                   true,  // NAT64 of 93.184.215.14: IPv6-only clusters reach the IPv4 web
		"64:ff9b::a01:203":                     true,  // NAT64 of 10.1.2.3, in an allowed range
		"64:ff9b:1::a00:5":                     false, // local-use NAT64: refused outright
		"64:ff9b:1:abcd::5db8:d70e":            false,
		"::a00:5":                              false, // IPv4-compatible
		"::5db8:d70e":                          false,
		"::ffff:0:a00:5":                       false, // SIIT IPv4-translated
		"::ffff:0:5db8:d70e":                   false,
		"2002:a00:5::1":                        false, // 6to4 of 10.0.0.5
		"2002:7f00:1::":                        false, // 6to4 of 127.0.0.1
		"2002:5db8:d70e::1":                    true,  // 6to4 of a public address
		"2001:0:4136:e378:8000:63bf:3fff:fdd2": false, // Teredo
		"fec0::1":                              false, // site-local
		"fe80::1%eth0":                         false,
	}
	for s, want := range cases {
		if got := g.Allowed(netip.MustParseAddr(s)); got != want {
			t.Errorf("Allowed(%s) = %v, want %v", s, got, want)
		}
		if got := g.AllowedAddrPort(netip.AddrPortFrom(netip.MustParseAddr(s), 80)); got != want {
			t.Errorf("Allowed(%s) = %v, want %v", s, got, want)
		}
	}
	if _, err := NewGuard("not-a-cidr"); err == nil {
		t.Error("a bad --allow-cidr was accepted")
	}
}

// TestGuardChecksTheDialledAddress dials a real loopback server by a name that resolves to loopback
// (the rebinding case): the guard refuses at connect time, and allows it when --allow-cidr names it.
func TestGuardChecksTheDialledAddress(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	target := net.JoinHostPort("localhost", port) // a name, resolved by the dialer

	for _, c := range []struct {
		name  string
		allow string
		ok    bool
	}{{"loopback refused", "", false}, {"loopback allowed", "127.0.0.0/8,::1/128", true}} {
		t.Run(c.name, func(t *testing.T) {
			g, err := NewGuard(c.allow)
			if err != nil {
				t.Fatal(err)
			}
			d := g.Dialer(net.Dialer{Timeout: 2 * time.Second})
			conn, err := d.DialContext(t.Context(), "tcp", target)
			if c.ok {
				if err != nil {
					t.Fatalf("allow %q: %v", c.allow, err)
				}
				conn.Close()
				return
			}
			if !errors.Is(err, ErrForbiddenDestination) {
				t.Fatalf("allow %q: dial %s = %v, want ErrForbiddenDestination", c.allow, target, err)
			}
		})
	}
}

// TestGuardDenySelf: the sidecar's own ports are refused on every local address, even where
// --allow-cidr allows the address; other ports stay allowed.
func TestGuardDenySelf(t *testing.T) {
	g, err := NewGuard("0.0.0.0/0,::/0") // everything allowed: DenySelf still holds
	if err != nil {
		t.Fatal(err)
	}
	if err := g.DenySelf(15080, 15081); err != nil {
		t.Fatal(err)
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	targets := []string{"127.0.0.1", "127.1.2.3", "::1", "0.0.0.0", "::", "::ffff:127.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::1"}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			targets = append(targets, n.IP.String())
		}
	}
	for _, s := range targets {
		a := netip.MustParseAddr(s)
		for _, port := range []uint16{15080, 15081} {
			if g.AllowedAddrPort(netip.AddrPortFrom(a, port)) {
				t.Errorf("%s port %d allowed: it is the sidecar's own", s, port)
			}
		}
		if !g.AllowedAddrPort(netip.AddrPortFrom(a, 8080)) {
			t.Errorf("%s port 8080 refused: only the sidecar's own ports are", s)
		}
	}
	if !g.AllowedAddrPort(netip.MustParseAddrPort("93.184.215.14:15080")) {
		t.Error("a remote address on port 15080 refused")
	}
	if err := g.DenySelf(0); err == nil {
		t.Error("port 0 accepted")
	}
}

// TestGuardResolver: names resolved by a hostile DNS server (Options.Resolver) are checked as they
// are dialled, each address on its own: an answer among good ones that embeds loopback in NAT64,
// or a name for the sidecar's own port, is refused; the good address still connects.
func TestGuardResolver(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer origin.Close()
	_, portStr, _ := net.SplitHostPort(origin.Listener.Addr().String())
	dns := fakeDNS(t, map[string][]netip.Addr{
		"nat64.test.":  {netip.MustParseAddr("64:ff9b::7f00:1")},
		"mapped.test.": {netip.MustParseAddr("::ffff:127.0.0.1")},
		"mixed.test.":  {netip.MustParseAddr("64:ff9b::7f00:1"), netip.MustParseAddr("127.0.0.1")},
		"self.test.":   {netip.MustParseAddr("127.0.0.1")},
	})
	dial := func(allow string, self int, name string) error {
		g, err := NewGuard(allow)
		if err != nil {
			t.Fatal(err)
		}
		if self > 0 {
			if err := g.DenySelf(self); err != nil {
				t.Fatal(err)
			}
		}
		up := NewUpstream(Options{Resolver: ResolverAt(dns), DialTimeout: 2 * time.Second}, g)
		c, err := up.dial(t.Context(), net.JoinHostPort(name, portStr))
		if err == nil {
			c.Close()
		}
		return err
	}
	port := origin.Listener.Addr().(*net.TCPAddr).Port
	for _, c := range []struct {
		test        string
		allow, name string
		self        int
		ok          bool
	}{
		{"NAT64 of loopback", "", "nat64.test", 0, false},
		{"IPv4-mapped loopback", "", "mapped.test", 0, false},
		{"mixed answers", "", "mixed.test", 0, false},
		{"NAT64 of an allowed address", "127.0.0.0/8", "mixed.test", 0, true}, // 127.0.0.1 allowed, and so its NAT64 form
		{"own port", "127.0.0.0/8", "self.test", port, false},
		{"other port", "127.0.0.0/8", "self.test", 0, true},
	} {
		t.Run(c.test, func(t *testing.T) {
			err := dial(c.allow, c.self, c.name)
			switch {
			case c.ok && err != nil:
				t.Errorf("allow %q, %s: %v", c.allow, c.name, err)
			case !c.ok && !errors.Is(err, ErrForbiddenDestination):
				t.Errorf("allow %q self %d, %s: %v, want ErrForbiddenDestination", c.allow, c.self, c.name, err)
			}
		})
	}
}

// fakeDNS answers A and AAAA queries over UDP from answers (names fully qualified); it returns its
// address.
func fakeDNS(t *testing.T, answers map[string][]netip.Addr) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var q dnsmessage.Message
			if q.Unpack(buf[:n]) != nil || len(q.Questions) != 1 {
				continue
			}
			qq := q.Questions[0]
			resp := dnsmessage.Message{Header: dnsmessage.Header{ID: q.ID, Response: true, Authoritative: true}, Questions: q.Questions}
			for _, a := range answers[strings.ToLower(qq.Name.String())] {
				h := dnsmessage.ResourceHeader{Name: qq.Name, Class: dnsmessage.ClassINET, TTL: 1}
				switch {
				case qq.Type == dnsmessage.TypeA && a.Is4():
					h.Type = dnsmessage.TypeA
					resp.Answers = append(resp.Answers, dnsmessage.Resource{Header: h, Body: &dnsmessage.AResource{A: a.As4()}})
				case qq.Type == dnsmessage.TypeAAAA && a.Is6():
					h.Type = dnsmessage.TypeAAAA
					resp.Answers = append(resp.Answers, dnsmessage.Resource{Header: h, Body: &dnsmessage.AAAAResource{AAAA: a.As16()}})
				}
			}
			if _, ok := answers[strings.ToLower(qq.Name.String())]; !ok {
				resp.RCode = dnsmessage.RCodeNameError
			}
			out, err := resp.Pack()
			if err == nil {
				_, _ = pc.WriteTo(out, from)
			}
		}
	}()
	return pc.LocalAddr().String()
}
