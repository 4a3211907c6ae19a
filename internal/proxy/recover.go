package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
)

// The recover boundary: every goroutine the proxy starts that handles remote input (the handlers
// of proxy requests and of requests inside intercepted tunnels, which also read origin responses;
// the copiers of blind tunnels) recovers a panic, so that one site's bytes can fail one request but
// never the process. net/http's own per-connection recover would keep the process too, but sends
// the client nothing, logs a multi-line trace and counts nothing.

// RecordPanic counts a recovered panic in crawlpolite_panics_total{where}, logs it (one line, with
// the stack) and calls Recovered. Other goroutines of the sidecar that recover panics report them
// here, so there is one counter.
func (s *Server) RecordPanic(where string, v any) {
	s.metrics.panics.WithLabelValues(where).Inc()
	s.log.Error("panic recovered", "where", where, "panic", cut(fmt.Sprint(v), 1024), "stack", string(debug.Stack()))
	if s.Recovered != nil {
		s.Recovered(where, v)
	}
}

// recoverWriter remembers whether the response head went out (and which connection was hijacked),
// so that a recovered panic can still answer 502, or else cut the response short.
type recoverWriter struct {
	http.ResponseWriter
	wrote bool
	conn  net.Conn // hijacked: the panic closes it
}

func (w *recoverWriter) WriteHeader(code int) {
	if code >= 200 || code == http.StatusSwitchingProtocols {
		w.wrote = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recoverWriter) Write(p []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach Flush and Hijack.
func (w *recoverWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// hijacked notes conn as w's, if w is a recoverWriter.
func hijacked(w http.ResponseWriter, conn net.Conn) {
	if rw, ok := w.(*recoverWriter); ok {
		rw.conn = conn
	}
}

// recoverRequest is deferred by the handlers: a panic fails the request with 502 (or, once the head
// is out, aborts the response so the client sees it fail), is recorded, and the server goes on.
func (s *Server) recoverRequest(where string, w *recoverWriter) {
	v := recover()
	if v == nil {
		return
	}
	if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
		panic(v) // net/http's way to abort a response: not a failure of ours
	}
	s.RecordPanic(where, v)
	s.metrics.outcome("panic")
	switch {
	case w.conn != nil:
		_ = w.conn.Close()
	case w.wrote:
		panic(http.ErrAbortHandler)
	default:
		clear(w.Header())
		(&Refusal{Status: http.StatusBadGateway, Type: "proxy_internal_error", Reason: "panic",
			Details: "the proxy failed on this request"}).write(w)
	}
}
