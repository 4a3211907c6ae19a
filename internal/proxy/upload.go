package proxy

import (
	"context"
	"io"
	"net/http"
	"time"
)

// write sends out on c: the head, then the body streamed from the client under h.uploadIdle per
// chunk rather than under one deadline for the whole request, so a large upload on a slow link is
// not cut off by the response header timeout. ctx ending (the lease lost, the drain out of time)
// stops it: its hook sets a past deadline that the renewals below never undo. sent is called as soon
// as the head has left: after the flush, or before the body's first read (Request.Write flushes the
// head before a body that is not in memory).
func (h *h1) write(ctx context.Context, c *h1conn, out *http.Request, w http.ResponseWriter, sent func()) error {
	_ = c.SetDeadline(time.Now().Add(h.uploadIdle))
	if ctx.Err() != nil {
		return ctx.Err()
	}
	req := out
	var body *idleBody
	if out.Body != nil {
		rc := http.NewResponseController(w)
		body = &idleBody{ReadCloser: out.Body, ctx: ctx, c: c, client: rc, idle: h.uploadIdle, first: sent}
		cp := *out
		cp.Body = body
		req = &cp
		// The client's connection goes back to the server's own deadlines once the body is read.
		defer func() { _ = rc.SetReadDeadline(time.Time{}) }()
	}
	if err := req.Write(c.bw); err != nil {
		if body != nil && body.stalled != nil {
			return body.stalled // Write hides the body's errors in a type of its own
		}
		return err
	}
	if err := c.bw.Flush(); err != nil {
		return err
	}
	if body == nil || body.first != nil { // no body, or one that never needed reading
		sent()
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
	first  func() // called before the first read, once the head is on the connection
	// stalled is the refusal for a client whose body stopped for longer than idle.
	stalled *Refusal
}

func (b *idleBody) Read(p []byte) (int, error) {
	if b.first != nil {
		b.first()
		b.first = nil
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
