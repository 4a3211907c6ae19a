package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// panicSentTurn panics when the tunnel's first bytes reach the origin (Sent runs in the copier
// goroutine, inside its recover boundary) and records its release.
type panicSentTurn struct {
	fakeTurn
	sent     atomic.Int32
	released chan struct{}
}

func (t *panicSentTurn) Sent() {
	if t.sent.Add(1) == 1 {
		panic("hostile tunnel bytes")
	}
}

func (t *panicSentTurn) Release() { close(t.released) }

// TestTunnelCopierRecovers: a panic in a blind tunnel's copier goroutine (a goroutine net/http's
// recover does not cover: without the copier's own recover the process dies) is counted in
// crawlpolite_panics_total{where="tunnel"} and logged once; the tunnel ends, closing both sides,
// the turn is released, the in-flight gauge goes back to zero, and the proxy goes on serving tunnels.
func TestTunnelCopierRecovers(t *testing.T) {
	originEnded := make(chan struct{}, 2)
	addr := rawOrigin(t, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.Copy(c, c) // echo until the proxy closes (an error: the deadline)
		originEnded <- struct{}{}
	})
	turn := &panicSentTurn{released: make(chan struct{})}
	var turns atomic.Int32
	h := newHarness(t, Options{}, &fakePolicy{blind: true, turn: func() Turn {
		if turns.Add(1) == 1 {
			return turn
		}
		return fakeTurn{}
	}})
	var recovered atomic.Value
	h.srv.Recovered = func(where string, v any) { recovered.Store(where) }

	open := func() (net.Conn, *bufio.Reader) {
		t.Helper()
		c, err := net.Dial("tcp", h.url.Host)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.WriteString(c, "CONNECT "+addr+" HTTP/1.1\r\nHost: "+addr+"\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("CONNECT: %v %v", resp, err)
		}
		return c, br
	}

	c, br := open()
	defer c.Close()
	_, _ = io.WriteString(c, "boom\n") // the first bytes: Sent panics in the copier
	select {
	case <-turn.released:
	case <-time.After(5 * time.Second):
		t.Fatal("the turn was not released after a panic in the tunnel's copier")
	}
	// The first bytes were written to the origin before Sent, so its echo may come back before
	// the close: the tunnel must end, not stay open.
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if rest, err := io.ReadAll(br); isTimeout(err) || len(rest) > len("boom\n") { // EOF or a reset: ended
		t.Errorf("the client's side of the tunnel did not end after the panic: read %q, %v", rest, err)
	}
	select {
	case <-originEnded:
	case <-time.After(5 * time.Second):
		t.Error("the origin's side of the tunnel is still open after the panic")
	}
	if n := h.counter("crawlpolite_panics_total", "where", "tunnel"); n != 1 {
		t.Errorf(`crawlpolite_panics_total{where="tunnel"} = %v, want 1`, n)
	}
	if w, _ := recovered.Load().(string); w != "tunnel" {
		t.Errorf("Recovered told %q, want tunnel", w)
	}
	if n := strings.Count(h.logs.String(), `"msg":"panic recovered"`); n != 1 {
		t.Errorf("want one log line for the panic, got:\n%s", h.logs.String())
	}
	deadline := time.Now().Add(5 * time.Second)
	for h.gauge("crawlpolite_proxy_in_flight") != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := h.gauge("crawlpolite_proxy_in_flight"); g != 0 {
		t.Errorf("crawlpolite_proxy_in_flight = %v after the tunnel ended, want 0", g)
	}

	// The process, and the proxy, go on.
	c2, br2 := open()
	defer c2.Close()
	_, _ = io.WriteString(c2, "fine\n")
	if line, err := br2.ReadString('\n'); err != nil || line != "fine\n" {
		t.Fatalf("the next tunnel echoed %q, %v", line, err)
	}
}

// gauge is the value of the unlabelled gauge name on the harness's registry (0 if absent).
func (h *harness) gauge(name string) float64 {
	mfs, err := h.reg.Gather()
	if err != nil {
		return -1
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}
