package main_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/crawlpolite/crawlpolite/internal/redistest"
)

// rawExchange writes req on a fresh connection to addr and returns the status line and headers of
// the answer, or the read error.
func rawExchange(t *testing.T, addr, req string) (*http.Response, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err == nil {
		resp.Body.Close()
	}
	return resp, err
}

func TestBadInput(t *testing.T) {
	a := newOrigin(t, robotsA, time.Millisecond, false)
	s := startSidecar(t, nil, "--header-timeout=1s", "--policy-file="+writePolicy(t, a.host(), ""))
	for _, tc := range []struct {
		name, req   string
		code        int
		proxyStatus string // expected in Proxy-Status, "" when the HTTP server itself answers
	}{
		{"garbage", "GARBAGE\r\n\r\n", 400, ""},
		{"origin-form request", "GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n", 400, "error=http_request_error"},
		{"oversized headers", "GET http://" + a.host() + "/ HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 128<<10) + "\r\n\r\n", 431, ""},
		{"CONNECT to a port not allowed", "CONNECT " + a.host() + " HTTP/1.1\r\nHost: " + a.host() + "\r\n\r\n", 403, "error=http_request_denied"},
		{"CONNECT to a private address", "CONNECT 10.1.2.3:443 HTTP/1.1\r\nHost: 10.1.2.3:443\r\n\r\n", 403, "error=destination_ip_prohibited"},
		{"CONNECT to cloud metadata", "CONNECT 169.254.169.254:443 HTTP/1.1\r\nHost: 169.254.169.254:443\r\n\r\n", 403, "error=destination_ip_prohibited"},
		{"GET to a private address", "GET http://10.1.2.3/ HTTP/1.1\r\nHost: 10.1.2.3\r\n\r\n", 403, "error=destination_ip_prohibited"},
		{"CONNECT without a port", "CONNECT example.com HTTP/1.1\r\nHost: example.com\r\n\r\n", 400, "error=http_request_error"},
		{"port out of range", "GET http://example.com:99999/ HTTP/1.1\r\nHost: example.com:99999\r\n\r\n", 400, "error=http_request_error"},
		{"unresolvable host", "GET http://nonexistent.invalid/ HTTP/1.1\r\nHost: nonexistent.invalid\r\n\r\n", 502, "error=dns_error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := rawExchange(t, s.proxy, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.code || !strings.Contains(resp.Header.Get("Proxy-Status"), tc.proxyStatus) {
				t.Fatalf("got %d Proxy-Status %q, want %d with %q", resp.StatusCode, resp.Header.Get("Proxy-Status"), tc.code, tc.proxyStatus)
			}
		})
	}
	t.Run("slowloris", func(t *testing.T) {
		c, err := net.Dial("tcp", s.proxy)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = io.WriteString(c, "GET http://"+a.host()+"/ HTTP/1.1\r\nHost: x\r\n") // and never the end
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		began := time.Now()
		_, err = io.ReadAll(c)
		if err != nil {
			t.Fatalf("the connection was not closed by the proxy: %v", err)
		}
		t.Logf("closed after %v (header timeout 1s)", time.Since(began))
	})
	// None of it hurt: the proxy still serves, nothing reached the origin but robots.txt, nothing is held.
	resp, err := s.client(t, false).Get("http://" + a.host() + "/fine")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after the bad input: %v %v", resp, err)
	}
	resp.Body.Close()
	if _, _, hits, _ := a.snapshot(); len(hits) != 2 {
		t.Errorf("origin hits %v: want robots.txt and /fine only", hits)
	}
	checkIdle(t, s, a.host())
}

// TestRedisRestartMidLoad: while Redis is down, fail mode answers 503 with Retry-After and local mode
// keeps serving within per-pod limits; both recover by themselves and leave nothing held.
func TestRedisRestartMidLoad(t *testing.T) {
	rs := redistest.Start(t)
	a := newOrigin(t, robotsA, 20*time.Millisecond, false)
	pol := writePolicy(t, a.host(), "")
	failing := startSidecar(t, nil, "--redis=redis://"+rs.Addr, "--policy-file="+pol)
	degrading := startSidecar(t, nil, "--redis=redis://"+rs.Addr, "--policy-file="+pol, "--on-redis-down=local")
	run := func(s *sidecar, d time.Duration) map[int]int {
		ctx, cancel := context.WithTimeout(t.Context(), d)
		defer cancel()
		return crawl(ctx, s.client(t, false), "http://"+a.host(), "x", 4)
	}
	for _, s := range []*sidecar{failing, degrading} {
		if c := run(s, time.Second); c[200] == 0 || len(c) != 1 {
			t.Fatalf("before the restart: %v", c)
		}
	}
	done := make(chan struct{})
	go func() { rs.Restart(t, 3*time.Second); close(done) }()
	time.Sleep(500 * time.Millisecond) // into the outage
	during := run(failing, time.Second)
	if during[http.StatusServiceUnavailable] == 0 {
		t.Errorf("fail mode during the outage: %v, want 503s", during)
	}
	resp, err := rawExchange(t, failing.proxy, "GET http://"+a.host()+"/x HTTP/1.1\r\nHost: x\r\n\r\n")
	if err != nil || resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(resp.Header.Get("Proxy-Status"), "proxy_internal_error") {
		t.Errorf("fail mode during the outage: %+v %v, want 503 with Retry-After and Proxy-Status", resp, err)
	}
	if code, _ := failing.adminGet(t, "/readyz"); code != 503 {
		t.Errorf("fail mode /readyz during the outage: %d, want 503", code)
	}
	if c := run(degrading, 500*time.Millisecond); c[200] == 0 || len(c) != 1 {
		t.Errorf("local mode during the outage: %v, want only 200", c)
	}
	if code, _ := degrading.adminGet(t, "/readyz"); code != 200 {
		t.Errorf("local mode /readyz during the outage: %d, want 200 (degraded)", code)
	}
	<-done
	// Recovery takes a reconnect and, in fail mode, the breaker's next probe (within a second).
	for _, s := range []*sidecar{failing, degrading} {
		first := run(s, time.Second)
		if c := run(s, time.Second); c[200] == 0 || len(c) != 1 {
			t.Errorf("after the restart: %v then %v, want only 200 by the second", first, c)
		}
		checkIdle(t, s, a.host())
	}
	if maxSeen, _, _, _ := a.snapshot(); maxSeen > 2*limitA {
		t.Errorf("origin saw %d in flight: local mode holds the limit per pod, so at most %d", maxSeen, 2*limitA)
	}
}
