package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"
)

// write sends out on c: the head, then the body streamed from the client under h.uploadIdle per
// chunk rather than under one deadline for the whole request, so a large upload on a slow link is
// not cut off by the response header timeout. ctx ending (the lease lost, the drain out of time)
// stops it: its hook sets a past deadline that the renewals below never undo. sent is called as soon
// as the head has left: after the flush, or before the body's first read (Request.Write flushes the
// head before a body that is not in memory).
//
// A request with Expect: 100-continue and a body waits, once its head has left, for the origin's
// 100 Continue (passed on to the client with the 1xx before it, through info) or h.expectTimeout
// before its body is read from the client. An origin that answers with a final status instead gets
// the body only if it keeps the connection (which the body keeps in step, as net/http's Transport
// does); that final response is returned, for the caller to send instead of reading another.
func (h *h1) write(ctx context.Context, c *h1conn, out *http.Request, w http.ResponseWriter, sent func(), info func(*http.Response)) (*http.Response, error) {
	_ = c.SetDeadline(time.Now().Add(h.uploadIdle))
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	req := out
	var body *idleBody
	if out.Body != nil {
		rc := http.NewResponseController(w)
		body = &idleBody{ReadCloser: out.Body, ctx: ctx, c: c, client: rc, idle: h.uploadIdle, first: sent}
		if strings.EqualFold(out.Header.Get("Expect"), "100-continue") {
			body.expect = func() error { return h.awaitContinue(ctx, c, out, body, info) }
		}
		cp := *out
		cp.Body = body
		req = &cp
		// The client's connection goes back to the server's own deadlines once the body is read.
		defer func() { _ = rc.SetReadDeadline(time.Time{}) }()
	}
	if err := req.Write(c.bw); err != nil {
		switch {
		case body != nil && body.early != nil && body.early.Close:
			return body.early, nil // the body was not sent, and the connection closes after the response
		case body != nil && body.stalled != nil:
			return nil, body.stalled // Write hides the body's errors in a type of its own
		case body != nil && body.failed != nil:
			return nil, body.failed
		}
		return nil, err
	}
	if err := c.bw.Flush(); err != nil {
		return nil, err
	}
	if body == nil || body.first != nil { // no body, or one that never needed reading
		sent()
	}
	if body != nil {
		return body.early, nil
	}
	return nil, nil
}

// errSkipBody stops a request body an origin refused before it was sent.
var errSkipBody = errors.New("proxy: the origin answered before the request body")

// awaitContinue waits for the origin's answer to a request head with Expect: 100-continue, for at
// most h.expectTimeout for its first byte; a final answer is kept in body.early, and the body is
// skipped (errSkipBody) when that answer closes the connection.
func (h *h1) awaitContinue(ctx context.Context, c *h1conn, out *http.Request, body *idleBody, info func(*http.Response)) error {
	_ = c.SetReadDeadline(time.Now().Add(h.expectTimeout))
	if ctx.Err() != nil { // the hook may have run before the deadline above replaced its own
		_ = c.SetDeadline(time.Unix(1, 0))
		return context.Cause(ctx)
	}
	if _, err := c.br.Peek(1); err != nil {
		if isTimeout(err) && ctx.Err() == nil {
			return nil // a silent origin: send the body anyway
		}
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(h.headerTimeout))
	resp, err := readHead(c.src, c.br, out, h.maxHead, info, true)
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusContinue {
		info(resp)
		return nil
	}
	body.early = resp
	if resp.Close {
		return errSkipBody
	}
	return nil
}

// idleBody is a request body on its way to the origin: before each read from the client it gives
// the client idle to send the next bytes, and after it gives the origin idle to take them.
type idleBody struct {
	io.ReadCloser
	ctx    context.Context
	c      *h1conn
	client *http.ResponseController
	idle   time.Duration
	first  func()       // called before the first read, once the head is on the connection
	expect func() error // then, for Expect: 100-continue, waits for the origin's go-ahead
	// stalled is the refusal for a client whose body stopped for longer than idle.
	stalled *Refusal
	failed  error          // what expect failed with
	early   *http.Response // the origin's final answer before the body (see awaitContinue)
}

func (b *idleBody) Read(p []byte) (int, error) {
	if b.first != nil {
		b.first()
		b.first = nil
	}
	if b.expect != nil {
		err := b.expect()
		b.expect = nil
		if err != nil {
			if !errors.Is(err, errSkipBody) {
				b.failed = err
			}
			return 0, err
		}
	}
	_ = b.client.SetReadDeadline(time.Now().Add(b.idle)) // ErrNotSupported: the server's own deadline stays
	n, err := b.ReadCloser.Read(p)
	if isTimeout(err) {
		b.stalled = &Refusal{Status: http.StatusRequestTimeout, Type: "http_request_error", Reason: "upload_idle",
			Details: "the request body stopped for longer than the upload idle timeout", Err: err}
		err = b.stalled
	}
	_ = b.c.SetWriteDeadline(time.Now().Add(b.idle))
	if b.ctx.Err() != nil {
		_ = b.c.SetDeadline(time.Unix(1, 0)) // the hook may have run before the renewal above
		return n, context.Cause(b.ctx)
	}
	return n, err
}
