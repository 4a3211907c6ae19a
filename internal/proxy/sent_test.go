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

// sentTurn records when Sent and Release were called.
type sentTurn struct {
	fakeTurn
	mu       sync.Mutex
	sent     []time.Time
	released time.Time
}

func (t *sentTurn) Release() {
	t.mu.Lock()
	t.released = time.Now()
	t.mu.Unlock()
}

func (t *sentTurn) releasedAt() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.released
}

func (t *sentTurn) Sent() {
	t.mu.Lock()
	t.sent = append(t.sent, time.Now())
	t.mu.Unlock()
}

func (t *sentTurn) marks() []time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]time.Time(nil), t.sent...)
}

// TestSent: every path tells its turn that its request reached the origin's connection, before
// releasing it (the release reports that start): a request with and without a body, a 100-continue
// upload, and a blind tunnel (after its first bytes, not before).
func TestSent(t *testing.T) {
	var mu sync.Mutex
	var arrived time.Time
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrived = time.Now()
		mu.Unlock()
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "ok")
	}))
	defer origin.Close()
	for _, tc := range []struct{ name, head, body string }{
		{"h1", "GET %s/x HTTP/1.1\r\nHost: h\r\n\r\n", ""},
		{"h1 body", "POST %s/x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n", "hello"},
		{"100-continue", "POST %s/x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n", "hello"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			turn := &sentTurn{}
			h := newHarness(t, Options{}, &fakePolicy{turn: func() Turn { return turn }})
			conn, err := net.Dial("tcp", h.url.Host)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			mu.Lock()
			arrived = time.Time{}
			mu.Unlock()
			_, _ = io.WriteString(conn, strings.Replace(tc.head, "%s", origin.URL, 1)+tc.body)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			mu.Lock()
			at := arrived
			mu.Unlock()
			var rel time.Time
			for deadline := time.Now().Add(5 * time.Second); rel.IsZero() && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
				rel = turn.releasedAt()
			}
			marks := turn.marks()
			switch {
			case at.IsZero():
				t.Fatal("the request never reached the origin")
			case len(marks) == 0:
				t.Fatal("Sent never called")
			case rel.IsZero() || rel.Before(marks[len(marks)-1]):
				t.Fatal("released before Sent: the release could not report the start")
			}
		})
	}

	t.Run("blind tunnel", func(t *testing.T) {
		got := make(chan time.Time, 1)
		addr := rawOrigin(t, func(c net.Conn) {
			b := make([]byte, 5)
			if _, err := io.ReadFull(c, b); err == nil {
				got <- time.Now()
				_, _ = c.Write(b)
			}
		})
		turn := &sentTurn{}
		h := newHarness(t, Options{}, &fakePolicy{turn: func() Turn { return turn }, blind: true})
		conn, err := net.Dial("tcp", h.url.Host)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.WriteString(conn, "CONNECT "+addr+" HTTP/1.1\r\nHost: "+addr+"\r\n\r\n")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("CONNECT: %v %v", resp, err)
		}
		if m := turn.marks(); len(m) != 0 {
			t.Fatalf("Sent before any byte went through the tunnel")
		}
		time.Sleep(50 * time.Millisecond)
		_, _ = io.WriteString(conn, "hello")
		b := make([]byte, 5)
		if _, err := io.ReadFull(br, b); err != nil || string(b) != "hello" {
			t.Fatalf("tunnel echo %q %v", b, err)
		}
		<-got
		if m := turn.marks(); len(m) != 1 {
			t.Fatalf("Sent called %d times for one tunnel, want once after its first bytes", len(m))
		}
	})
}
