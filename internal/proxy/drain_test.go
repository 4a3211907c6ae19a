package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestDrain: Shutdown stops accepting at once, lets a request in flight finish and returns nil
// when it has; past its deadline it closes what is left (a blind tunnel, which http.Server no longer
// tracks once hijacked) and cancels waits for a turn, returning the deadline's error.
func TestDrain(t *testing.T) {
	t.Run("request in flight finishes", func(t *testing.T) {
		arrived, finish := make(chan struct{}), make(chan struct{})
		origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(arrived)
			<-finish
			_, _ = io.WriteString(w, "done")
		}))
		defer origin.Close()
		h := newHarness(t, Options{}, nil)
		type result struct {
			status int
			body   string
			err    error
		}
		got := make(chan result, 1)
		go func() {
			status, body, err := h.get(h.client(), origin.URL+"/slow")
			got <- result{status, body, err}
		}()
		<-arrived
		drained := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			drained <- h.srv.Shutdown(ctx)
		}()
		waitRefused(t, h.url.Host)
		select {
		case err := <-drained:
			t.Fatalf("Shutdown returned %v with a request in flight", err)
		default:
		}
		close(finish)
		if r := <-got; r.err != nil || r.status != 200 || r.body != "done" {
			t.Errorf("request in flight: %d %q %v", r.status, r.body, r.err)
		}
		if err := <-drained; err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})

	t.Run("tunnel closed at the deadline", func(t *testing.T) {
		addr := rawOrigin(t, func(c net.Conn) { _, _ = io.Copy(c, c) })
		h := newHarness(t, Options{}, &fakePolicy{blind: true})
		c, err := net.Dial("tcp", h.url.Host)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.WriteString(c, "CONNECT "+addr+" HTTP/1.1\r\nHost: "+addr+"\r\n\r\nping\n")
		br := bufio.NewReader(c)
		if resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect}); err != nil || resp.StatusCode != 200 {
			t.Fatalf("CONNECT: %v %v", resp, err)
		}
		if line, err := br.ReadString('\n'); err != nil || line != "ping\n" {
			t.Fatalf("tunnel echoed %q, %v", line, err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		defer cancel()
		if err := h.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown: %v, want the deadline's error", err)
		}
		if _, err := br.ReadString('\n'); !errors.Is(err, io.EOF) {
			t.Errorf("tunnel after the drain: %v, want EOF (closed)", err)
		}
	})

	t.Run("wait for a turn cancelled at the deadline", func(t *testing.T) {
		waiting, cancelled := make(chan struct{}), make(chan struct{})
		h := newHarness(t, Options{}, &fakePolicy{admit: func(r *http.Request) error {
			close(waiting)
			<-r.Context().Done()
			close(cancelled)
			return r.Context().Err()
		}})
		go func() { _, _, _ = h.get(h.client(), "http://127.0.0.1:1/") }()
		<-waiting
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		defer cancel()
		if err := h.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown: %v, want the deadline's error", err)
		}
		select {
		case <-cancelled:
		default:
			t.Error("the wait for a turn outlived the drain")
		}
	})
}

// waitRefused waits (in ms steps, at most a second) until addr no longer accepts connections.
func waitRefused(t *testing.T, addr string) {
	t.Helper()
	for range 1000 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		_ = c.Close()
		time.Sleep(time.Millisecond)
	}
	t.Fatal("the proxy still accepts connections during the drain")
}
