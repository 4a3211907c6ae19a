package proxy

import (
	"crypto/tls"
	"errors"
	"os"
	"time"
)

// reusable reports whether c, idle in the pool, may carry a new request: nothing unread (an origin
// that sent more than the response it was asked for would answer the next request with it) and not
// closed by the origin. It is called just before the request is written, after the turn's wait, so
// bytes that arrived late are seen. When it cannot tell, the answer is no: a new connection costs a
// dial, a poisoned one another crawler's response.
//
// Over TLS, records already read from the socket are decrypted first (a read that cannot block);
// the one thing it cannot see is part of a record read together with the end of the response.
func (c *h1conn) reusable() bool {
	if c.br.Buffered() > 0 {
		return false
	}
	tc, ok := c.Conn.(*tls.Conn)
	if !ok {
		return socketClean(c.Conn)
	}
	_ = tc.SetReadDeadline(time.Unix(1, 0)) // no blocking: only what tls.Conn holds already
	_, err := c.br.Peek(1)
	_ = tc.SetReadDeadline(time.Time{})
	if !errors.Is(err, os.ErrDeadlineExceeded) { // data, EOF or a failure
		return false
	}
	return socketClean(tc.NetConn())
}
