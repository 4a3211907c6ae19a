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

// TestProxying: end-to-end headers pass unchanged, hop-by-hop ones (RFC 9110 7.6.1) are removed,
// Via is added both ways, no X-Forwarded-For, Expect: 100-continue works, and an upgrade is passed
// through as a two-way byte stream.
func TestProxying(t *testing.T) {
	seen := make(chan http.Header, 1)
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
		h := r.Header.Clone()
		h.Set("X-Body", string(body))
		seen <- h
		w.Header().Set("X-End-To-End", "kept")
		w.Header().Set("Keep-Alive", "timeout=5")
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(origin.Close)
	host := strings.TrimPrefix(origin.URL, "http://")
	s := startSidecar(t, nil, "--policy-file="+writePolicy(t, host, ""))

	req := "POST http://" + host + "/form HTTP/1.1\r\nHost: " + host + "\r\n" +
		"Connection: close, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: 300\r\nProxy-Authorization: Basic eA==\r\nTE: gzip\r\n" +
		"X-End-To-End: yes\r\nVia: 1.0 upstream-cache\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
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
	resp.Body.Close()
	h := <-seen
	for _, hop := range []string{"X-Hop", "Keep-Alive", "Proxy-Authorization", "Te", "X-Forwarded-For", "Forwarded"} {
		if v := h.Get(hop); v != "" {
			t.Errorf("origin got %s: %q", hop, v)
		}
	}
	if h.Get("X-End-To-End") != "yes" || h.Get("X-Body") != "hello" {
		t.Errorf("origin got X-End-To-End %q, body %q", h.Get("X-End-To-End"), h.Get("X-Body"))
	}
	if v := strings.Join(h.Values("Via"), ", "); v != "1.0 upstream-cache, 1.1 crawlpolite" {
		t.Errorf("origin got Via %q", v)
	}
	if resp.Header.Get("X-End-To-End") != "kept" || resp.Header.Get("Keep-Alive") != "" || resp.Header.Get("Via") != "1.1 crawlpolite" {
		t.Errorf("client got %s, headers %v", resp.Status, resp.Header)
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
