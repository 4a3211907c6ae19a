package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// poolOrigin is a raw origin whose answer to each request is decided by act from the connection's
// number (from 1) and the request's number on it (from 1); it records what it was asked.
type poolOrigin struct {
	mu    sync.Mutex
	conns int
	seen  []string // "conn/method path"
}

type originAct int

const (
	answer      originAct = iota // answer and keep the connection
	answerClose                  // answer (keep-alive claimed), then close
	dropRequest                  // read the request and close without answering
)

func (o *poolOrigin) start(t *testing.T, act func(conn, req int) originAct) string {
	return rawOrigin(t, func(c net.Conn) {
		o.mu.Lock()
		o.conns++
		conn := o.conns
		o.mu.Unlock()
		br := bufio.NewReader(c)
		for n := 1; ; n++ {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, req.Body)
			o.mu.Lock()
			o.seen = append(o.seen, fmt.Sprintf("%d/%s %s", conn, req.Method, req.URL.Path))
			o.mu.Unlock()
			a := act(conn, n)
			if a == dropRequest {
				return
			}
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(req.URL.Path), req.URL.Path)
			if a == answerClose {
				return
			}
		}
	})
}

func (o *poolOrigin) log() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.seen, ", ")
}

// TestPool: idle origin connections are reused; one the origin closed while idle is replaced
// before anything is sent on it; one that fails before any byte of the response comes back gets an
// idempotent request sent again, once, on a new connection, and a request that cannot be sent again
// a 502; a request that cannot be sent again gets no pooled connection idle for longer than
// staleAfter once its turn has come.
func TestPool(t *testing.T) {
	for _, tc := range []struct {
		name       string
		act        func(conn, req int) originAct
		staleAfter int // 0: the default; -1: every reused connection is stale
		second     string
		wantStatus int
		wantSeen   string
	}{
		{name: "reused", act: func(int, int) originAct { return answer }, second: "GET",
			wantStatus: 200, wantSeen: "1/GET /first, 1/GET /second"},
		{name: "closed while idle", act: func(int, int) originAct { return answerClose }, second: "POST",
			wantStatus: 200, wantSeen: "1/GET /first, 2/POST /second"},
		{name: "idempotent sent again", act: dropSecondOnFirst, second: "GET",
			wantStatus: 200, wantSeen: "1/GET /first, 1/GET /second, 2/GET /second"},
		{name: "not idempotent not sent again", act: dropSecondOnFirst, second: "POST",
			wantStatus: 502, wantSeen: "1/GET /first, 1/POST /second"},
		{name: "stale for a POST", act: func(int, int) originAct { return answer }, staleAfter: -1, second: "POST",
			wantStatus: 200, wantSeen: "1/GET /first, 2/POST /second"},
		{name: "never stale for a GET", act: func(int, int) originAct { return answer }, staleAfter: -1, second: "GET",
			wantStatus: 200, wantSeen: "1/GET /first, 1/GET /second"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := &poolOrigin{}
			addr := o.start(t, tc.act)
			h := newHarness(t, Options{}, nil)
			if tc.staleAfter < 0 {
				h.srv.h1.staleAfter = -1
			}
			if _, resp, body := h.rawExchange(t, "GET http://"+addr+"/first HTTP/1.1\r\nHost: "+addr+"\r\n\r\n"); resp.StatusCode != 200 || body != "/first" {
				t.Fatalf("first: %s %q", resp.Status, body)
			}
			// Wait for the origin's close, if any, to reach the proxy's side of the connection.
			if tc.name == "closed while idle" {
				waitClosed(t, h)
			}
			req := tc.second + " http://" + addr + "/second HTTP/1.1\r\nHost: " + addr + "\r\n"
			if tc.second == "POST" {
				req += "Content-Length: 4\r\n\r\ndata"
			} else {
				req += "\r\n"
			}
			_, resp, _ := h.rawExchange(t, req)
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("second: %s, want %d", resp.Status, tc.wantStatus)
			}
			if got := o.log(); got != tc.wantSeen {
				t.Errorf("origin saw %q, want %q", got, tc.wantSeen)
			}
		})
	}
}

// dropSecondOnFirst: the first connection's second request is read and dropped, unanswered (an
// origin closing an idle connection as the request arrived); everything else is answered.
func dropSecondOnFirst(conn, req int) originAct {
	if conn == 1 && req == 2 {
		return dropRequest
	}
	return answer
}

// waitClosed waits until the proxy's one idle connection has seen the origin's close.
func waitClosed(t *testing.T, h *harness) {
	t.Helper()
	h.srv.h1.mu.Lock()
	var c *h1conn
	for _, list := range h.srv.h1.idle {
		c = list[0]
	}
	h.srv.h1.mu.Unlock()
	if c == nil {
		t.Fatal("no idle connection")
	}
	for range 1000 {
		if !c.reusable() {
			return
		}
		time.Sleep(time.Millisecond)
	}
}
