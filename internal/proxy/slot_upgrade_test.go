package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestSlotHeldWhileOriginUpgrades: a client that asks to switch protocols and leaves before the
// origin's 101 does not free the turn before the origin has answered (issue 18 item 3: upgrades
// went through httputil.ReverseProxy under the client's context, which freed the slot at the
// client's cancellation while the origin was still working).
func TestSlotHeldWhileOriginUpgrades(t *testing.T) {
	const work = time.Second
	var done doneAt
	addr := rawOrigin(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		time.Sleep(work) // the origin works on the request, the client leaves meanwhile
		done.mark()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		_, _ = io.Copy(c, br) // echo until the proxy closes
	})
	turn := &releaseTurn{released: make(chan time.Time, 1)}
	h := newHarness(t, Options{}, &fakePolicy{turn: func() Turn { return turn }})
	conn, err := net.Dial("tcp", h.url.Host)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, "GET http://"+addr+"/up HTTP/1.1\r\nHost: "+addr+
		"\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the origin has the request
	_ = conn.Close()                   // and the client leaves before the 101
	checkHeldUntilDone(t, turn, &done, work, "the origin answered its 101")
}
