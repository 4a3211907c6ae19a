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

// TestProxying: Expect: 100-continue works, and an upgrade is passed through as a two-way byte
// stream. The header rules, the same for every request, are checked once here in TestPlainHTTP and
// on every kind of request in process (internal/proxy's TestHeaderRules).
func TestProxying(t *testing.T) {
	seen := make(chan string, 1)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/robots.txt":
			return
		case "/upgrade":
			if r.Header.Get("Upgrade") != "echo" {
				http.Error(w, "want Upgrade: echo", 400)
				return
			}
			w.Header().Set("Connection", "Upgrade")
			w.Header().Set("Upgrade", "echo")
			w.WriteHeader(http.StatusSwitchingProtocols)
			conn, rw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			_ = rw.Flush()
			_, _ = io.Copy(conn, rw) // echo until the client closes
			return
		}
		body, _ := io.ReadAll(r.Body)
		seen <- string(body)
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(origin.Close)
	host := strings.TrimPrefix(origin.URL, "http://")
	s := startSidecar(t, nil, "--policy-file="+writePolicy(t, host, ""))

	req := "POST http://" + host + "/form HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n" +
		"Expect: 100-continue\r\nContent-Length: 5\r\n\r\n"
	c, err := net.Dial("tcp", s.proxy)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	cont, err := http.ReadResponse(br, nil)
	if err != nil || cont.StatusCode != http.StatusContinue {
		t.Fatalf("want 100 Continue before the body, got %v %v", cont, err)
	}
	_, _ = io.WriteString(c, "hello")
	// A client must accept any number of 1xx before the final response (RFC 9110 15.2): the origin's
	// 100 may be forwarded after the one the sidecar's server sent when the body was first read.
	var resp *http.Response
	for resp == nil || resp.StatusCode == http.StatusContinue {
		if resp, err = http.ReadResponse(br, nil); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if body := <-seen; body != "hello" || resp.StatusCode != 200 || string(b) != "ok" {
		t.Errorf("origin got body %q; client got %s %q", body, resp.Status, b)
	}

	up, err := net.Dial("tcp", s.proxy)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	_ = up.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(up, "GET http://"+host+"/upgrade HTTP/1.1\r\nHost: "+host+"\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	ubr := bufio.NewReader(up)
	resp, err = http.ReadResponse(ubr, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	_, _ = io.WriteString(up, "ping\n")
	line, err := ubr.ReadString('\n')
	if err != nil || line != "ping\n" {
		t.Fatalf("upgraded stream echoed %q, %v", line, err)
	}
}
