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

// doneAt records when the origin finished its work on a request.
type doneAt struct {
	mu sync.Mutex
	t  time.Time
}

func (d *doneAt) mark() { d.mu.Lock(); d.t = time.Now(); d.mu.Unlock() }

func (d *doneAt) get() time.Time { d.mu.Lock(); defer d.mu.Unlock(); return d.t }

// checkHeldUntilDone waits for turn's release and fails the test if it came before the origin was
// done (when the origin had not finished yet, it waits out its work to say by how much).
func checkHeldUntilDone(t *testing.T, turn *releaseTurn, done *doneAt, work time.Duration, what string) {
	t.Helper()
	var rel time.Time
	select {
	case rel = <-turn.released:
	case <-time.After(10 * time.Second):
		t.Fatal("turn never released")
	}
	d := done.get()
	if d.IsZero() {
		time.Sleep(work)
		if d = done.get(); d.IsZero() {
			t.Fatalf("turn released and the origin never finished %s", what)
		}
	}
	if rel.Before(d) {
		t.Fatalf("turn released %v before %s", d.Sub(rel), what)
	}
}

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
			var done doneAt
			origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				time.Sleep(work)
				done.mark()
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
			checkHeldUntilDone(t, turn, &done, work, "the origin was done")
		})
	}
}
