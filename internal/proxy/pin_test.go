package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// pinTurn is a turn that pins its request's dial to addr.
type pinTurn struct {
	fakeTurn
	addr netip.Addr
}

func (p pinTurn) DialAddr() netip.Addr { return p.addr }

var _ DialPin = pinTurn{}

// TestDialPinned: a turn's pinned address is what the proxy dials, not the name (which resolves
// nowhere here), for a plain request and a 100-continue upload; the guard still checks the pinned
// address.
func TestDialPinned(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("origin saw " + r.Host))
	}))
	defer origin.Close()
	_, port, _ := net.SplitHostPort(origin.Listener.Addr().String())
	pin := netip.MustParseAddr("127.0.0.1")
	pol := &fakePolicy{turn: func() Turn { return pinTurn{addr: pin} }}
	h := newHarness(t, Options{}, pol)
	c := h.client()
	u := "http://pinned.invalid:" + port + "/"
	status, body, err := h.get(c, u)
	if err != nil || status != http.StatusOK || body != "origin saw pinned.invalid:"+port {
		t.Fatalf("GET: %d %q %v", status, body, err)
	}
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader("upload"))
	req.Header.Set("Expect", "100-continue")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("100-continue: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("100-continue: %d", resp.StatusCode)
	}
	// Unpinned, the same name does not resolve: the pin is what made the requests go.
	pol.turn = nil
	if status, _, _ := h.get(c, "http://pinned.invalid:"+port+"/again"); status != http.StatusBadGateway {
		t.Errorf("unpinned: %d, want 502 (the name does not resolve)", status)
	}
	pin = netip.MustParseAddr("10.1.2.3") // outside the harness's allowed ranges
	pol.turn = func() Turn { return pinTurn{addr: pin} }
	if status, _, _ := h.get(c, "http://127.0.0.1:"+port+"/"); status != http.StatusForbidden {
		t.Errorf("pinned to a forbidden address: %d, want 403 from the guard", status)
	}
}

// TestUpstreamResolve: the address to pin is the first the guard allows, through the upstream's
// resolver; none allowed fails as the dial would.
func TestUpstreamResolve(t *testing.T) {
	dns := fakeDNS(t, map[string][]netip.Addr{
		"two.test.":     {netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("127.0.0.2")},
		"private.test.": {netip.MustParseAddr("10.0.0.1")},
	})
	g, err := NewGuard("127.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	up := NewUpstream(Options{Resolver: ResolverAt(dns), DialTimeout: 2 * time.Second}, g)
	ctx := t.Context()
	if a, err := up.Resolve(ctx, "two.test", 80); err != nil || a != netip.MustParseAddr("127.0.0.2") {
		t.Errorf("two.test: %v %v, want 127.0.0.2 (10.0.0.1 is not allowed)", a, err)
	}
	if _, err := up.Resolve(ctx, "private.test", 80); !errors.Is(err, ErrForbiddenDestination) {
		t.Errorf("private.test: %v, want ErrForbiddenDestination", err)
	}
	if _, err := up.Resolve(ctx, "missing.test", 80); !errors.As(err, new(*net.DNSError)) {
		t.Errorf("missing.test: %v, want a DNS error", err)
	}
	if a, err := up.Resolve(ctx, "[::ffff:127.0.0.3]", 80); err != nil || a != netip.MustParseAddr("127.0.0.3") {
		t.Errorf("literal: %v %v", a, err)
	}
}

// TestTunnelPinned: a blind CONNECT tunnel is dialled to its turn's pinned address too.
func TestTunnelPinned(t *testing.T) {
	addr := rawOrigin(t, func(c net.Conn) {
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err == nil {
			_, _ = c.Write(append([]byte("echo "), buf...))
		}
	})
	_, port, _ := net.SplitHostPort(addr)
	pol := &fakePolicy{blind: true, turn: func() Turn { return pinTurn{addr: netip.MustParseAddr("127.0.0.1")} }}
	h := newHarness(t, Options{}, pol)
	c, err := net.Dial("tcp", h.url.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	target := "pinned.invalid:" + port
	if _, err := io.WriteString(c, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	status, err := readRequest(br)
	if err != nil || !strings.Contains(status, " 200") {
		t.Fatalf("CONNECT %s: %q %v", target, status, err)
	}
	if _, err := io.WriteString(c, "ping"); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len("echo ping"))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "echo ping" {
		t.Fatalf("through the tunnel: %q %v", got, err)
	}
}
