package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// releaseTurn records when it was released.
type releaseTurn struct {
	fakeTurn
	released chan time.Time
}

func (t *releaseTurn) Release() { t.released <- time.Now() }

// TestSlotHeldWhileOriginWorks: a client that leaves while the origin is still working on its
// request does not free the turn before the origin is done, with and without Expect: 100-continue.
// When 100-continue went through httputil.ReverseProxy under the client's context, its turn was
// released about 800 ms before the origin answered.
func TestSlotHeldWhileOriginWorks(t *testing.T) {
	const work = time.Second
	for _, tc := range []struct{ name, extra string }{
		{"h1", ""},
		{"100-continue", "Expect: 100-continue\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var done time.Time
			origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				time.Sleep(work)
				mu.Lock()
				done = time.Now()
				mu.Unlock()
				_, _ = io.WriteString(w, "done")
			}))
			defer origin.Close()
			turn := &releaseTurn{released: make(chan time.Time, 1)}
			h := newHarness(t, Options{}, &fakePolicy{turn: func() Turn { return turn }})
			conn, err := net.Dial("tcp", h.url.Host)
			if err != nil {
				t.Fatal(err)
			}
			req := "POST " + origin.URL + "/work HTTP/1.1\r\nHost: " + strings.TrimPrefix(origin.URL, "http://") +
				"\r\nContent-Length: 5\r\n" + tc.extra + "\r\nhello"
			if _, err := io.WriteString(conn, req); err != nil {
				t.Fatal(err)
			}
			if tc.extra != "" { // the proxy's 100 Continue: the body has been asked for
				_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				line, err := bufio.NewReader(conn).ReadString('\n')
				if err != nil || !strings.Contains(line, "100") {
					t.Fatalf("want 100 Continue, got %q %v", line, err)
				}
			}
			time.Sleep(200 * time.Millisecond) // the origin has the request
			_ = conn.Close()                   // and the client leaves
			var rel time.Time
			select {
			case rel = <-turn.released:
			case <-time.After(10 * time.Second):
				t.Fatal("turn never released")
			}
			mu.Lock()
			d := done
			mu.Unlock()
			switch {
			case d.IsZero():
				time.Sleep(work)
				mu.Lock()
				d = done
				mu.Unlock()
				t.Fatalf("turn released %v before the origin was done", d.Sub(rel))
			case rel.Before(d):
				t.Fatalf("turn released %v before the origin was done", d.Sub(rel))
			}
		})
	}
}
