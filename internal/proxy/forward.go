package proxy

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"time"
)

// via is this proxy's Via entry (RFC 9110 7.6.3), added to requests and responses.
const via = "1.1 " + ProxyName

type turnKey struct{}

// clientKey holds the client's context in a ReverseProxy request's (which is the upstream one).
type clientKey struct{}

// forward admits r, readies a connection to its origin, waits for the turn's start, then sends r and
// streams the response back. The turn is held until the origin is done with r (see h1.serve), or
// the origin failed.
func (s *Server) forward(w http.ResponseWriter, r *http.Request) {
	done := s.active.start()
	defer done()
	turn, err := s.pol.Admit(r.Context(), r)
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	defer turn.Release()
	s.metrics.inFlight.Inc()
	defer s.metrics.inFlight.Dec()
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	// The exchange with the origin outlives the client (see h1.serve), not the lease or the drain.
	up, upCancel := context.WithCancelCause(withPin(s.base, turn))
	defer upCancel(nil)
	stop := turn.AfterLost(func() { cancel(errLost); upCancel(errLost) })
	defer stop()
	if !s.h1.handles(r) {
		if err := turn.Wait(ctx); err != nil {
			s.refuse(w, r, err) // the client went away
			return
		}
		// The origin request runs under up, not the client's context: a client that leaves while
		// the origin works on its request (a 100-continue upload, an upgrade) must not free the
		// slot under it, as h1.serve does not either.
		var wrote atomic.Bool
		trace := &httptrace.ClientTrace{WroteHeaders: func() { wrote.Store(true) }}
		rctx := context.WithValue(context.WithValue(up, turnKey{}, turn), clientKey{}, ctx)
		s.rp.ServeHTTP(w, r.WithContext(httptrace.WithClientTrace(rctx, trace)))
		if wrote.Load() {
			// The Transport writes on a goroutine of its own and says nothing once the head has
			// left (WroteHeaders and WroteRequest both come before its last flush), so the end of
			// the exchange stands in for the start: never earlier than the origin saw it.
			turn.Sent()
		}
		return
	}
	r = r.WithContext(ctx)
	err = s.h1.serve(w, r, up, turn.Wait, turn.Sent, func(resp *http.Response) {
		turn.Response(resp.StatusCode, resp.Header)
		s.metrics.outcome("ok")
	})
	if err != nil {
		s.upstreamError(w, r, err)
	}
}

var errLost = errors.New("proxy: the request's hold on its origin was lost")

func (s *Server) reverseProxy(pool *bufferPool) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		// Rewrite (rather than Director) drops Forwarded and X-Forwarded-* from the client and adds
		// none: an origin learns nothing about the pod. Hop-by-hop headers are removed by the
		// ReverseProxy itself (RFC 9110 7.6.1), including those named in Connection.
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.Header.Add("Via", via)
			pr.Out.RequestURI = ""
		},
		Transport:  s.up.transport,
		BufferPool: pool,
		ModifyResponse: func(resp *http.Response) error {
			if t, ok := resp.Request.Context().Value(turnKey{}).(Turn); ok {
				t.Response(resp.StatusCode, resp.Header)
			}
			resp.Header.Add("Via", via)
			s.metrics.outcome("ok")
			return nil
		},
		ErrorHandler: s.upstreamError,
		ErrorLog:     nil, // errors go through ErrorHandler
	}
}

// upstreamError answers a failed round trip with the matching refusal, unless the client is gone.
func (s *Server) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	ctx := r.Context()
	if c, ok := ctx.Value(clientKey{}).(context.Context); ok {
		ctx = c // the ReverseProxy's request carries the upstream context; the client's is here
	}
	switch {
	case errors.Is(context.Cause(ctx), errLost), errors.Is(err, errLost):
		s.refuse(w, r, &Refusal{Status: http.StatusServiceUnavailable, Type: "proxy_internal_error",
			Reason: "lease_lost", Details: "the hold on the origin's slot was lost", RetryAfter: time.Second, Err: err})
	case errors.As(err, new(*Refusal)): // the client's own fault (a stalled upload): it may still listen
		s.refuse(w, r, err)
	case ctx.Err() != nil: // the client went away: nobody to answer
		s.metrics.outcome("client_gone")
	default:
		s.refuse(w, r, Classify(err))
	}
}

// bufferPool recycles the 32 KiB copy buffers of response bodies.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(v []byte) { b.p.Put(&v) }
