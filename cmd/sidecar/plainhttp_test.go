package main_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestPlainHTTP covers the way every request goes to its origin (internal/proxy's h1, not
// http.Transport), through the binary: hop-by-hop headers, Via, no X-Forwarded-For, no invented
// User-Agent; a pooled connection the origin closed
// while idle is replaced without the client seeing an error; a streamed body is not held back; HEAD;
// trailers.
func TestPlainHTTP(t *testing.T) {
	seen := make(chan http.Header, 1)
	got := make(chan struct{})
	origin := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/robots.txt":
		case "/headers":
			seen <- r.Header.Clone()
			w.Header().Set("Keep-Alive", "timeout=5")
			w.Header().Set("X-End-To-End", "kept")
			_, _ = io.WriteString(w, "ok")
		case "/stream":
			_, _ = io.WriteString(w, "first\n")
			w.(http.Flusher).Flush()
			select { // the rest only once the client has the first line: a buffering proxy deadlocks here
			case <-got:
			case <-time.After(10 * time.Second):
			}
			_, _ = io.WriteString(w, "second\n")
		case "/trailer":
			w.Header().Set("Trailer", "X-Checksum")
			_, _ = io.WriteString(w, "body")
			w.Header().Set("X-Checksum", "abc123")
		default:
			w.Header().Set("Content-Length", "5")
			if r.Method != http.MethodHead {
				_, _ = io.WriteString(w, "hello")
			}
		}
	}))
	origin.Config.IdleTimeout = 100 * time.Millisecond // closes pooled connections behind the proxy's back
	origin.Start()
	t.Cleanup(origin.Close)
	host := strings.TrimPrefix(origin.URL, "http://")
	s := startSidecar(t, nil, "--policy-file="+writePolicy(t, host, ""))

	// Raw, to control every header.
	c, err := net.Dial("tcp", s.proxy)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	_, _ = io.WriteString(c, "GET "+origin.URL+"/headers HTTP/1.1\r\nHost: "+host+"\r\nConnection: X-Hop\r\nX-Hop: secret\r\n"+
		"Keep-Alive: 300\r\nProxy-Authorization: Basic eA==\r\nTE: gzip\r\nX-Forwarded-For: 10.1.2.3\r\nX-End-To-End: yes\r\nVia: 1.0 cache\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	h := <-seen
	for _, hop := range []string{"X-Hop", "Keep-Alive", "Proxy-Authorization", "Te", "X-Forwarded-For", "Connection"} {
		if v := h.Get(hop); v != "" {
			t.Errorf("origin got %s: %q", hop, v)
		}
	}
	if _, ok := h["User-Agent"]; ok {
		t.Errorf("origin got a User-Agent the crawler did not send: %q", h.Get("User-Agent"))
	}
	if v := strings.Join(h.Values("Via"), ", "); v != "1.0 cache, 1.1 crawlpolite" || h.Get("X-End-To-End") != "yes" {
		t.Errorf("origin got Via %q, X-End-To-End %q", v, h.Get("X-End-To-End"))
	}
	if resp.Header.Get("Keep-Alive") != "" || resp.Header.Get("Via") != "1.1 crawlpolite" || resp.Header.Get("X-End-To-End") != "kept" {
		t.Errorf("client got headers %v", resp.Header)
	}

	cl := s.client(t, false)
	for i := range 4 {
		time.Sleep(250 * time.Millisecond) // the origin has closed the pooled connection by now
		resp, err := cl.Get(origin.URL + "/page")
		if err != nil {
			t.Fatalf("request %d after the origin closed the idle connection: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "hello" {
			t.Fatalf("request %d after the origin closed the idle connection: %s %q", i, resp.Status, b)
		}
	}

	// A POST cannot be sent again: after a wait it gets no pooled connection the origin may have
	// closed (here, idle for longer than the origin's idle timeout).
	time.Sleep(1200 * time.Millisecond)
	resp, err = cl.Post(origin.URL+"/form", "text/plain", strings.NewReader("data"))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(b) != "hello" {
		t.Fatalf("POST after the origin closed the idle connection: %s %q", resp.Status, b)
	}
	resp.Body.Close()

	resp, err = cl.Get(origin.URL + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	sr := bufio.NewReader(resp.Body)
	if line, err := sr.ReadString('\n'); err != nil || line != "first\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	close(got)
	if rest, err := io.ReadAll(sr); err != nil || string(rest) != "second\n" {
		t.Fatalf("rest %q, %v", rest, err)
	}
	resp.Body.Close()

	resp, err = cl.Head(origin.URL + "/page")
	if err != nil || resp.StatusCode != 200 || resp.ContentLength != 5 {
		t.Fatalf("HEAD: %v %v", resp, err)
	}
	resp.Body.Close()

	resp, err = cl.Get(origin.URL + "/trailer")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != "body" || resp.Trailer.Get("X-Checksum") != "abc123" {
		t.Errorf("trailer: body %q, trailers %v", b, resp.Trailer)
	}
	resp.Body.Close()
}
