package proxy

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestHostileHeads: origins whose response heads are too long, too many or invalid get the request
// a 502 and their connection closed; the proxy keeps serving an ordinary origin.
func TestHostileHeads(t *testing.T) {
	ordinary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "fine")
	}))
	defer ordinary.Close()
	h := newHarness(t, Options{}, nil)
	c := h.client()

	line := strings.Repeat("a", 1000)
	cases := []struct {
		name   string
		send   func(w io.Writer) error // the origin's answer; a write error ends it
		status int
		closed bool // the proxy must close the origin's connection
	}{
		{"endless header line", func(w io.Writer) error {
			if _, err := io.WriteString(w, "HTTP/1.1 200 OK\r\nX-Long: "); err != nil {
				return err
			}
			chunk := []byte(strings.Repeat("a", 64<<10))
			for range 256 { // 16 MiB, then the line stays open: endless, as far as any limit goes
				if _, err := w.Write(chunk); err != nil {
					return err
				}
			}
			return nil
		}, http.StatusBadGateway, true},
		{"2 MiB head", func(w io.Writer) error {
			var b strings.Builder
			b.WriteString("HTTP/1.1 200 OK\r\n")
			for i := 0; b.Len() < 2<<20; i++ {
				fmt.Fprintf(&b, "X-H%d: %s\r\n", i, line)
			}
			b.WriteString("Content-Length: 0\r\n\r\n")
			_, err := io.WriteString(w, b.String())
			return err
		}, http.StatusBadGateway, true},
		{"1000 1xx", func(w io.Writer) error {
			_, err := io.WriteString(w, strings.Repeat("HTTP/1.1 102 Processing\r\n\r\n", 1000)+"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
			return err
		}, http.StatusBadGateway, true},
		{"status 099", func(w io.Writer) error {
			_, err := io.WriteString(w, "HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n")
			return err
		}, http.StatusBadGateway, true},
		{"101 unsolicited", func(w io.Writer) error {
			_, err := io.WriteString(w, "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: evil\r\n\r\nhello")
			return err
		}, http.StatusBadGateway, true},
		// What is allowed stays allowed: five 1xx, and a head just under the limit.
		{"five 1xx", func(w io.Writer) error {
			_, err := io.WriteString(w, strings.Repeat("HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n", 5)+"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			return err
		}, http.StatusOK, false},
		{"60 KiB head", func(w io.Writer) error {
			var b strings.Builder
			b.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n")
			for i := 0; b.Len() < 60<<10; i++ {
				fmt.Fprintf(&b, "X-H%d: %s\r\n", i, line)
			}
			b.WriteString("\r\nok")
			_, err := io.WriteString(w, b.String())
			return err
		}, http.StatusOK, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			closed := make(chan struct{})
			done := sync.OnceFunc(func() { close(closed) })
			addr := rawOrigin(t, func(conn net.Conn) {
				defer done()
				br := bufio.NewReader(conn)
				if _, err := readRequest(br); err != nil {
					return
				}
				if err := tc.send(conn); err != nil {
					return // the proxy closed the connection while we wrote
				}
				if !tc.closed {
					return
				}
				// Wait for the proxy to close the connection.
				_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, _ = br.ReadByte()
			})
			start := time.Now()
			status, _, err := h.get(c, "http://"+addr+"/")
			if err != nil {
				t.Fatalf("no response through the proxy: %v", err)
			}
			if status != tc.status {
				t.Fatalf("status %d, want %d", status, tc.status)
			}
			if tc.closed {
				select {
				case <-closed:
				case <-time.After(4 * time.Second):
					t.Fatal("the origin's connection was not closed")
				}
				if d := time.Since(start); d > 2*time.Second {
					t.Errorf("refused after %v: it waited for a timeout rather than a bound", d)
				}
			}
			if status, body, err := h.get(c, ordinary.URL); err != nil || status != 200 || body != "fine" {
				t.Fatalf("ordinary origin afterwards: %d %q %v", status, body, err)
			}
		})
	}
}

// TestPoolNotPoisoned: an origin that sends an extra response 200 ms after the one asked for must
// not answer the next request on that connection with it, in plain HTTP and inside HTTPS.
func TestPoolNotPoisoned(t *testing.T) {
	tlsOrigin := httptest.NewTLSServer(http.NotFoundHandler())
	originTLS := tlsOrigin.TLS.Clone()
	roots := tlsOrigin.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	tlsOrigin.Close()
	saved := upstreamTLS
	upstreamTLS = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	defer func() { upstreamTLS = saved }()

	for _, scheme := range []string{"http", "https"} {
		t.Run(scheme, func(t *testing.T) {
			var conns atomic.Int32
			addr := rawOrigin(t, func(conn net.Conn) {
				conns.Add(1)
				if scheme == "https" {
					conn = tls.Server(conn, originTLS)
				}
				br := bufio.NewReader(conn)
				for {
					first, err := readRequest(br)
					if err != nil {
						return
					}
					path := strings.Fields(first)[1]
					fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(path), path)
					if path == "/b" {
						time.Sleep(200 * time.Millisecond)
						_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\npoison!")
					}
				}
			})
			h := newHarness(t, Options{}, nil)
			c := h.client()
			for _, path := range []string{"/a", "/b", "/c", "/d"} {
				if path == "/c" {
					time.Sleep(400 * time.Millisecond) // the extra response has arrived
				}
				status, body, err := h.get(c, scheme+"://"+addr+path)
				if err != nil || status != 200 || body != path {
					t.Fatalf("GET %s: %d %q %v", path, status, body, err)
				}
			}
			// /a and /b share one connection, /c and /d another: pooling still works.
			if n := conns.Load(); n != 2 {
				t.Errorf("%d origin connections, want 2", n)
			}
		})
	}
}

// TestPoolBounded: the idle pool keeps at most MaxIdleConns connections and as many origins,
// closing the one idle longest, however many origins a crawler moves through.
func TestPoolBounded(t *testing.T) {
	h := newH1(nil, Options{MaxIdleConns: 4}.withDefaults(), &bufferPool{}, nil)
	defer h.close()
	var closed []string
	for i := range 100 {
		a, b := net.Pipe()
		defer b.Close()
		key := fmt.Sprintf("http://host%d:80", i)
		c := &h1conn{Conn: &closeRecorder{Conn: a, onClose: func() { closed = append(closed, key) }}, key: key, br: bufio.NewReader(a)}
		h.put(c)
		h.mu.Lock()
		n, hosts := h.nIdle, len(h.idle)
		h.mu.Unlock()
		if n > 4 || hosts > 4 {
			t.Fatalf("after %d origins: %d idle connections for %d origins, want at most 4", i+1, n, hosts)
		}
	}
	if len(closed) != 96 || closed[0] != "http://host0:80" || closed[95] != "http://host95:80" {
		t.Errorf("closed %d, first %v: want the 96 idle longest, oldest first", len(closed), closed[:min(2, len(closed))])
	}
}

type closeRecorder struct {
	net.Conn
	onClose func()
}

func (c *closeRecorder) Close() error { c.onClose(); return c.Conn.Close() }

// TestTunnelServesItsHost: an intercepted CONNECT serves the host it was opened (and admitted)
// for: a TLS server name for another host gets no certificate, a request for another host 421.
func TestTunnelServesItsHost(t *testing.T) {
	pol := &fakePolicy{admit: func(r *http.Request) error {
		return &Refusal{Status: http.StatusTeapot, Type: "http_request_denied", Reason: "test", Details: "admitted"}
	}}
	h := newHarness(t, Options{}, pol)

	if tc, err := h.connectTLS("a.test:443", "b.test"); err == nil {
		tc.Close()
		t.Fatal("TLS for b.test inside CONNECT a.test succeeded")
	}
	h.ca.mu.Lock()
	_, minted := h.ca.leaves["b.test"]
	h.ca.mu.Unlock()
	if minted {
		t.Error("a certificate for b.test was minted inside CONNECT a.test")
	}

	tc, err := h.connectTLS("a.test:443", "A.Test")
	if err != nil {
		t.Fatalf("TLS for a.test inside CONNECT a.test: %v", err)
	}
	defer tc.Close()
	br := bufio.NewReader(tc)
	for _, c := range []struct {
		host   string
		status int
	}{
		{"b.test", http.StatusMisdirectedRequest},
		{"a.test:8443", http.StatusMisdirectedRequest},
		{"a.test", http.StatusTeapot}, // reached the politeness: forwarded to a.test
		{"A.TEST:443", http.StatusTeapot},
	} {
		if _, err := fmt.Fprintf(tc, "GET /x HTTP/1.1\r\nHost: %s\r\n\r\n", c.host); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("Host %s: %v", c.host, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("Host %s: status %d, want %d", c.host, resp.StatusCode, c.status)
		}
	}
	for _, u := range pol.admitted() {
		if u != "https://a.test:443/x" {
			t.Errorf("admitted %s: only a.test may be", u)
		}
	}
	if n := len(pol.admitted()); n != 2 {
		t.Errorf("%d requests admitted, want 2", n)
	}
}
