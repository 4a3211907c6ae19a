package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"
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
	}
	for s, want := range cases {
		if got := g.Allowed(netip.MustParseAddr(s)); got != want {
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
		allow string
		ok    bool
	}{{"", false}, {"127.0.0.0/8,::1/128", true}} {
		g, err := NewGuard(c.allow)
		if err != nil {
			t.Fatal(err)
		}
		d := g.Dialer(net.Dialer{Timeout: 2 * time.Second})
		conn, err := d.DialContext(context.Background(), "tcp", target)
		if c.ok {
			if err != nil {
				t.Fatalf("allow %q: %v", c.allow, err)
			}
			conn.Close()
			continue
		}
		if !errors.Is(err, ErrForbiddenDestination) {
			t.Fatalf("allow %q: dial %s = %v, want ErrForbiddenDestination", c.allow, target, err)
		}
	}
}
