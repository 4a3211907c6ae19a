package proxy

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"
)

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
	exchange, cancelExchange := context.WithCancelCause(withPin(s.base, turn))
	defer cancelExchange(nil)
	stop := turn.AfterLost(func() { cancel(errLost); cancelExchange(errLost) })
	defer stop()
	r = r.WithContext(ctx)
	err = s.h1.serve(w, r, exchange, turn.Wait, turn.Sent, func(resp *http.Response) {
		turn.Response(resp.StatusCode, resp.Header)
		s.metrics.outcome("ok")
	})
	if err != nil {
		s.upstreamError(w, r, err)
	}
}

var errLost = errors.New("proxy: the request's hold on its origin was lost")

// upstreamError answers a failed round trip with the matching refusal, unless the client is gone.
func (s *Server) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	ctx := r.Context()
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
