package proxy

import (
	"errors"
	"net/http"
	"strings"
	"time"
)

var errUpgradeMismatch = errors.New("proxy: origin switched to a protocol other than the one asked for")

// upgrade passes an origin's 101 Switching Protocols to the client and then carries bytes both ways
// between the client's connection and c until either side ends (the turn held meanwhile; its
// context ending, as for any exchange, sets c's deadline and so ends both). A 101 to a protocol the
// request did not ask for fails the request. It returns an error, for the caller to answer, only
// when nothing was written to w yet.
func (h *h1) upgrade(w http.ResponseWriter, c *h1conn, out *http.Request, resp *http.Response, onHead func(*http.Response)) error {
	defer resp.Body.Close() // unregisters the cancellation hook, once the exchange is over
	if want, got := upgradeType(out.Header), upgradeType(resp.Header); !strings.EqualFold(want, got) {
		_ = c.Close()
		return badResponse(errUpgradeMismatch)
	}
	incoming(resp)
	onHead(resp)
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		_ = c.Close()
		return err
	}
	hijacked(w, conn)
	_ = conn.SetDeadline(time.Time{}) // the server's timeouts no longer apply
	head := &http.Response{StatusCode: resp.StatusCode, ProtoMajor: 1, ProtoMinor: 1, Header: resp.Header}
	if err := head.Write(brw); err != nil || brw.Flush() != nil {
		_ = conn.Close()
		_ = c.Close()
		return nil
	}
	client := conn
	if brw.Reader.Buffered() > 0 { // the client's first bytes of the new protocol
		client = &bufferedConn{Conn: conn, r: brw.Reader}
	}
	origin := c.Conn
	if c.br.Buffered() > 0 { // the origin's, read with the 101
		origin = &bufferedConn{Conn: c.Conn, r: c.br}
	}
	h.splice(client, origin, nil)
	return nil
}
