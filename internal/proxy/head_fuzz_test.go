package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"testing"
)

// FuzzReadHead runs the origin-response reader against a hostile byte stream: the input, then
// (when endless) 'a' forever. It must never panic, never take more than the head limit per head
// from the stream, pass on at most max1xx informational responses, and return only final statuses
// 200-999 (or 101 when asked to upgrade).
func FuzzReadHead(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 099 Odd\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nbody until close",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-Fold: a\r\n  b\r\n\r\n",
		"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
		"HTTP/1.1 200 OK\r\nX-Long: ",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n",
		"HTTP/1.1 999 Whatever\r\nContent-Length: -1\r\n\r\n",
	} {
		f.Add([]byte(s), false, false)
		f.Add([]byte(s), true, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, endless, upgrade bool) {
		const limit = 1 << 10
		var stream io.Reader = bytes.NewReader(data)
		if endless {
			stream = io.MultiReader(stream, repeatByte('a'))
		}
		src := &countReader{r: stream}
		hr := &headReader{r: src, left: -1}
		br := bufio.NewReaderSize(hr, 4<<10)
		req, _ := http.NewRequest(http.MethodGet, "http://example.com/", nil)
		if upgrade {
			req.Header.Set("Upgrade", "websocket")
		}
		var infos int
		resp, err := readHead(hr, br, req, limit, func(r *http.Response) {
			infos++
			if r.StatusCode < 100 || r.StatusCode > 199 || r.StatusCode == 101 {
				t.Fatalf("informational response with status %d", r.StatusCode)
			}
		}, false)
		if infos > max1xx {
			t.Fatalf("%d 1xx responses passed on", infos)
		}
		if src.n > (max1xx+1)*limit {
			t.Fatalf("read %d bytes of heads, limit %d per head", src.n, limit)
		}
		if err != nil {
			return
		}
		switch s := resp.StatusCode; {
		case s == 101 && !upgrade, s < 200 && s != 101, s > 999:
			t.Fatalf("final status %d", s)
		}
		_, _ = io.CopyN(io.Discard, resp.Body, 64<<10) // the body reader copes too
		_ = resp.Body.Close()
	})
}

type countReader struct {
	r io.Reader
	n int
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// repeatByte reads b forever.
type repeatByte byte

func (r repeatByte) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}
