package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// originRequest is what a raw origin read: the request as parsed, and its body.
type originRequest struct {
	header http.Header
	body   string
}

// headerOrigin is a raw origin that reads each request (answering Expect: 100-continue first),
// hands it to got, and answers with response (a full response text), for the header rules.
func headerOrigin(t *testing.T, got chan<- originRequest, response string) string {
	t.Helper()
	return rawOrigin(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if strings.EqualFold(req.Header.Get("Expect"), "100-continue") {
				_, _ = io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
			}
			b, _ := io.ReadAll(req.Body)
			got <- originRequest{header: req.Header, body: string(b)}
			if _, err := io.WriteString(c, response); err != nil {
				return
			}
		}
	})
}

// rawExchange sends one raw request to the proxy on a new connection and returns the status codes
// of the 1xx responses and the final response with its body read.
func (h *harness) rawExchange(t *testing.T, req string) ([]int, *http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", h.url.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var infos []int
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reading the proxy's response: %v", err)
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("reading the proxy's response body: %v", err)
			}
			return infos, resp, string(b)
		}
		infos = append(infos, resp.StatusCode)
	}
}

// TestHeaderRules: what a request and its response look like on the far side of the proxy, for every
// kind of request. Hop-by-hop fields (RFC 9110 7.6.1) and those the Connection field names are
// removed both ways, Forwarded and X-Forwarded-* never reach the origin, Via is added both ways,
// end-to-end fields pass unchanged, no User-Agent is invented, Te: trailers is kept (as
// net/http/httputil's ReverseProxy keeps it), and the body arrives.
func TestHeaderRules(t *testing.T) {
	const response = "HTTP/1.1 200 OK\r\nConnection: X-Secret\r\nX-Secret: s\r\nKeep-Alive: timeout=5\r\n" +
		"Proxy-Connection: keep-alive\r\nX-End-To-End: kept\r\nVia: 1.0 origin-cache\r\nContent-Length: 2\r\n\r\nok"
	const hop = "Connection: X-Hop, Keep-Alive\r\nX-Hop: secret\r\nKeep-Alive: 300\r\nProxy-Connection: keep-alive\r\n" +
		"Proxy-Authorization: Basic eA==\r\nTrailer: X-Sum\r\nX-Forwarded-For: 10.1.2.3\r\n" +
		"X-Forwarded-Host: internal\r\nX-Forwarded-Proto: http\r\nForwarded: for=10.1.2.3\r\n" +
		"X-End-To-End: yes\r\nVia: 1.0 upstream-cache\r\n"
	for _, tc := range []struct {
		name     string
		method   string
		extra    string // more request fields
		body     string
		wantTe   string // the Te the origin gets
		wantInfo bool   // the client gets a 100 Continue
	}{
		{name: "GET", method: "GET", extra: "TE: gzip\r\n"},
		{name: "GET with Te trailers", method: "GET", extra: "TE: gzip, Trailers\r\n", wantTe: "trailers"},
		{name: "POST", method: "POST", extra: "TE: gzip\r\n", body: "hello"},
		{name: "Expect 100-continue", method: "POST", extra: "Expect: 100-continue\r\nTE: gzip\r\n", body: "hello", wantInfo: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan originRequest, 1)
			addr := headerOrigin(t, got, response)
			h := newHarness(t, Options{}, nil)
			req := tc.method + " http://" + addr + "/rules HTTP/1.1\r\nHost: " + addr + "\r\n" + hop + tc.extra
			if tc.body != "" {
				req += fmt.Sprintf("Content-Length: %d\r\n", len(tc.body))
			}
			req += "\r\n" + tc.body
			infos, resp, body := h.rawExchange(t, req)
			var seen originRequest
			select {
			case seen = <-got:
			default:
				t.Fatalf("the origin got no request; the client got %s %q", resp.Status, body)
			}

			for _, k := range []string{"Connection", "X-Hop", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization",
				"Trailer", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded"} {
				if v, ok := seen.header[k]; ok {
					t.Errorf("origin got %s: %q", k, v)
				}
			}
			// Te is hop-by-hop, but for "trailers": the client accepts them (RFC 9110 10.1.4).
			if v := strings.Join(seen.header.Values("Te"), ", "); v != tc.wantTe {
				t.Errorf("origin got Te %q, want %q", v, tc.wantTe)
			}
			if v, ok := seen.header["User-Agent"]; ok {
				t.Errorf("origin got a User-Agent the crawler did not send: %q", v)
			}
			if v := strings.Join(seen.header.Values("Via"), ", "); v != "1.0 upstream-cache, 1.1 crawlpolite" {
				t.Errorf("origin got Via %q", v)
			}
			if v := seen.header.Get("X-End-To-End"); v != "yes" {
				t.Errorf("origin got X-End-To-End %q, want yes", v)
			}
			if seen.body != tc.body {
				t.Errorf("origin got body %q, want %q", seen.body, tc.body)
			}

			if resp.StatusCode != 200 || body != "ok" {
				t.Fatalf("client got %s %q", resp.Status, body)
			}
			for _, k := range []string{"X-Secret", "Keep-Alive", "Proxy-Connection"} {
				if v, ok := resp.Header[k]; ok {
					t.Errorf("client got %s: %q", k, v)
				}
			}
			if v := strings.Join(resp.Header.Values("Via"), ", "); v != "1.0 origin-cache, 1.1 crawlpolite" {
				t.Errorf("client got Via %q", v)
			}
			if v := resp.Header.Get("X-End-To-End"); v != "kept" {
				t.Errorf("client got X-End-To-End %q, want kept", v)
			}
			if tc.wantInfo && !slices.Contains(infos, http.StatusContinue) {
				t.Errorf("client got 1xx %v, want a 100 Continue", infos)
			}
		})
	}
}

// TestInformational: 1xx responses an origin sends before the final one reach the client in order,
// without hop-by-hop fields; the final response follows.
func TestInformational(t *testing.T) {
	got := make(chan originRequest, 1)
	addr := headerOrigin(t, got, "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\nConnection: X-Hint\r\nX-Hint: h\r\n\r\n"+
		"HTTP/1.1 103 Early Hints\r\nLink: </app.js>; rel=preload\r\n\r\n"+
		"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\npage")
	h := newHarness(t, Options{}, nil)
	c, err := net.Dial("tcp", h.url.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET http://"+addr+"/ HTTP/1.1\r\nHost: "+addr+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for _, link := range []string{"</style.css>; rel=preload", "</app.js>; rel=preload"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusEarlyHints || resp.Header.Get("Link") != link {
			t.Fatalf("got %s Link %q, want 103 Link %q", resp.Status, resp.Header.Get("Link"), link)
		}
		if v, ok := resp.Header["X-Hint"]; ok {
			t.Errorf("103 carried the hop-by-hop X-Hint: %q", v)
		}
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "page" {
		t.Fatalf("final response %s %q", resp.Status, b)
	}
}

// TestTrailers: trailers the origin announces and sends after a chunked body reach the client.
func TestTrailers(t *testing.T) {
	got := make(chan originRequest, 1)
	addr := headerOrigin(t, got, "HTTP/1.1 200 OK\r\nTrailer: X-Checksum\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"4\r\nbody\r\n0\r\nX-Checksum: abc123\r\n\r\n")
	h := newHarness(t, Options{}, nil)
	resp, err := h.client().Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || string(b) != "body" {
		t.Fatalf("body %q, %v", b, err)
	}
	if v := resp.Trailer.Get("X-Checksum"); v != "abc123" {
		t.Errorf("trailer X-Checksum %q, want abc123 (trailers %v)", v, resp.Trailer)
	}
}

// TestUpgrade: a request asking to switch protocols reaches the origin with Connection: Upgrade and
// its Upgrade field (the rest of the hop-by-hop ones removed); the origin's 101 reaches the client
// with Via, and the connection then carries bytes both ways. A 101 for a protocol other than the one
// asked for fails the request.
func TestUpgrade(t *testing.T) {
	for _, tc := range []struct {
		name       string
		answer     string // the Upgrade the origin switches to
		wantStatus int
	}{
		{name: "switched", answer: "echo", wantStatus: http.StatusSwitchingProtocols},
		{name: "another protocol", answer: "websocket", wantStatus: http.StatusBadGateway},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan http.Header, 1)
			ended := make(chan error, 1)
			addr := rawOrigin(t, func(c net.Conn) {
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				got <- req.Header
				_ = c.SetDeadline(time.Now().Add(5 * time.Second)) // the proxy should close it first
				fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n\r\n", tc.answer)
				_, err = io.Copy(c, br) // echo until the proxy closes
				ended <- err
			})
			h := newHarness(t, Options{}, nil)
			c, err := net.Dial("tcp", h.url.Host)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			_, _ = io.WriteString(c, "GET http://"+addr+"/up HTTP/1.1\r\nHost: "+addr+"\r\nConnection: Upgrade, X-Hop\r\n"+
				"Upgrade: echo\r\nX-Hop: secret\r\nKeep-Alive: 300\r\n\r\n")
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			seen := <-got
			if v := seen.Get("Connection"); !strings.EqualFold(v, "Upgrade") {
				t.Errorf("origin got Connection %q, want Upgrade", v)
			}
			if v := seen.Get("Upgrade"); v != "echo" {
				t.Errorf("origin got Upgrade %q, want echo", v)
			}
			for _, k := range []string{"X-Hop", "Keep-Alive"} {
				if v, ok := seen[k]; ok {
					t.Errorf("origin got %s: %q", k, v)
				}
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("client got %s, want %d", resp.Status, tc.wantStatus)
			}
			if tc.wantStatus != http.StatusSwitchingProtocols {
				if err := <-ended; err != nil {
					t.Errorf("the origin's connection was not closed: %v", err)
				}
				return
			}
			if resp.Header.Get("Upgrade") != "echo" || resp.Header.Get("Via") != "1.1 crawlpolite" {
				t.Errorf("client's 101 has Upgrade %q, Via %q", resp.Header.Get("Upgrade"), resp.Header.Get("Via"))
			}
			_, _ = io.WriteString(c, "ping\n")
			if line, err := br.ReadString('\n'); err != nil || line != "ping\n" {
				t.Fatalf("upgraded stream echoed %q, %v", line, err)
			}
		})
	}
}

// TestExpectContinue: a request with Expect: 100-continue sends its body only once the origin asks
// for it, or says nothing for the expect timeout. An origin that answers at once with a final status
// gets no body if it closes the connection (else the body, which keeps the connection in step), and
// the client that final status.
func TestExpectContinue(t *testing.T) {
	for _, tc := range []struct {
		name       string
		first      string // what the origin sends after the request head; "" for nothing
		wantStatus int
		wantBody   bool          // the origin gets the body
		timeout    time.Duration // the wait for the origin's 100
	}{
		{name: "continue", first: "HTTP/1.1 100 Continue\r\n\r\n", wantStatus: 200, wantBody: true, timeout: 5 * time.Second},
		{name: "refused, closing", first: "HTTP/1.1 417 Expectation Failed\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
			wantStatus: 417, timeout: 5 * time.Second},
		// As net/http's Transport does: the body keeps a connection that stays open in step.
		{name: "refused, staying open", first: "HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n",
			wantStatus: 417, wantBody: true, timeout: 5 * time.Second},
		{name: "silent origin", wantStatus: 200, wantBody: true, timeout: 20 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gotBody := make(chan string, 1)
			addr := rawOrigin(t, func(c net.Conn) {
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				if tc.first != "" {
					_, _ = io.WriteString(c, tc.first)
				}
				if tc.wantStatus != 200 {
					// Nothing more should come on this connection: the request's body was not sent.
					_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
					b, _ := io.ReadAll(br)
					gotBody <- string(b)
					return
				}
				b, _ := io.ReadAll(req.Body)
				gotBody <- string(b)
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			})
			h := newHarness(t, Options{}, nil)
			h.srv.expectContinue(tc.timeout)
			_, resp, _ := h.rawExchange(t, "POST http://"+addr+"/upload HTTP/1.1\r\nHost: "+addr+
				"\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello")
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("client got %s, want %d", resp.Status, tc.wantStatus)
			}
			body := <-gotBody
			if tc.wantBody && body != "hello" || !tc.wantBody && body != "" {
				t.Errorf("origin got body %q (want it: %v)", body, tc.wantBody)
			}
		})
	}
}
