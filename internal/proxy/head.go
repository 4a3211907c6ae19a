package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// Bounds on what an origin's response head may cost, whatever the origin sends.
const (
	// DefaultMaxResponseHeaderBytes is Options.MaxResponseHeaderBytes's default: what
	// http.Transport's MaxResponseHeaderBytes allows by default is 10 MiB, far more than any site needs
	// and, times the requests in flight, more than a sidecar's memory limit.
	DefaultMaxResponseHeaderBytes = 64 << 10
	// max1xx is how many informational responses may precede the final one (net/http's client
	// allows 5 too); each may be up to the head limit.
	max1xx = 5
)

var (
	errHeadTooLarge = errors.New("proxy: origin's response head too large")
	errTooMany1xx   = errors.New("proxy: origin sent too many 1xx responses")
	errBadStatus    = errors.New("proxy: origin's status code is not 100-999")
	errUnsolicited  = errors.New("proxy: origin switched protocols unasked")
)

// headReader sits under an origin connection's bufio.Reader. While a head is read it lets through
// at most left more bytes, then fails with errHeadTooLarge; otherwise (left < 0) it is the connection.
// Because the bufio.Reader never holds more than its size, a head costs at most the limit plus that
// buffer, however long its lines: textproto, which joins the pieces of a long line, never gets more.
type headReader struct {
	r    io.Reader
	left int
}

func (h *headReader) Read(p []byte) (int, error) {
	if h.left < 0 {
		return h.r.Read(p)
	}
	if h.left == 0 {
		return 0, errHeadTooLarge
	}
	if len(p) > h.left {
		p = p[:h.left]
	}
	n, err := h.r.Read(p)
	h.left -= n
	return n, err
}

// readHead reads the response to req from br (which reads from src): at most max1xx informational
// responses, each passed to info, then the final one; with upTo100, a 100 Continue is returned too. Each head may take limit bytes from src.
// Status codes outside 100-999 and a 101 that req did not ask for (no Upgrade) are errors, as are
// more 1xx; every error is a *Refusal (502) but for the connection's own (timeouts, resets). The
// caller closes the connection on error.
func readHead(src *headReader, br *bufio.Reader, req *http.Request, limit int, info func(*http.Response), upTo100 bool) (*http.Response, error) {
	defer func() { src.left = -1 }()
	for n := 0; ; n++ {
		src.left = limit
		resp, err := http.ReadResponse(br, req)
		src.left = -1
		switch {
		case errors.Is(err, errHeadTooLarge):
			return nil, &Refusal{Status: http.StatusBadGateway, Type: "http_response_header_section_size", Reason: "upstream_error",
				Details: fmt.Sprintf("origin's response head exceeds %d bytes", limit), Err: errHeadTooLarge}
		case err != nil:
			return nil, err
		case resp.StatusCode < 100 || resp.StatusCode > 999:
			return nil, badResponse(errBadStatus)
		case resp.StatusCode == http.StatusSwitchingProtocols && req.Header.Get("Upgrade") == "":
			return nil, badResponse(errUnsolicited)
		case resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols:
			return resp, nil
		case upTo100 && resp.StatusCode == http.StatusContinue:
			return resp, nil
		case n == max1xx:
			return nil, badResponse(errTooMany1xx)
		}
		if info != nil {
			info(resp)
		}
	}
}

func badResponse(err error) *Refusal {
	return &Refusal{Status: http.StatusBadGateway, Type: "http_protocol_error", Reason: "upstream_error",
		Details: "origin sent an invalid response", Err: err}
}
