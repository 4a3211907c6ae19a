package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Politeness decides when a request may go to its origin. internal/throttle implements it; the proxy
// knows nothing of how.
type Politeness interface {
	// Admit waits until r may go upstream and returns its turn. r.URL is absolute. A CONNECT (a blind
	// tunnel) has Method CONNECT and URL https://authority. An error that is a *Refusal is sent as
	// is; any other means the client went away.
	Admit(ctx context.Context, r *http.Request) (Turn, error)
	// Tunnel reports whether CONNECTs to authority get a blind tunnel instead of interception.
	Tunnel(authority string) bool
}

// Turn is one admitted request's hold on its origin.
type Turn interface {
	// Wait blocks until the request may start (the host's delay), or ctx ends. The proxy readies
	// the origin connection first, so the gap the origin sees is the one the gate set.
	Wait(ctx context.Context) error
	// AfterLost arranges for f to run (in its own goroutine) if the hold is lost before Release, so
	// the request can be cancelled; stop unregisters f, reporting false if it already ran.
	AfterLost(f func()) (stop func() bool)
	// Sent is called once the request has been handed to the origin's connection (its head
	// written, or later), so the politeness can keep the host's next start a delay after the start
	// the origin saw even when the request went late after Wait (a starved process). It may be
	// called again (a request sent again, or a later mark of the same one); the latest counts.
	Sent()
	// Response is called with the origin's response head, before its body is streamed.
	Response(status int, h http.Header)
	// Release gives the hold back. It is called exactly once, and must not block for long.
	Release()
}

// Options are the proxy's settings. Zero values take the defaults.
type Options struct {
	ConnectPorts          []int         // ports CONNECT may reach; default 443 and 8443
	AnyConnectPort        bool          // allow CONNECT to every port, ConnectPorts notwithstanding
	ReadHeaderTimeout     time.Duration // for a client's request head; default 10s
	IdleTimeout           time.Duration // keep-alive of idle client connections; default 90s
	MaxHeaderBytes        int           // of a client's request head; default 64 KiB
	DialTimeout           time.Duration // to the origin; default 10s
	TLSHandshakeTimeout   time.Duration // with the origin; default 10s
	ResponseHeaderTimeout time.Duration // origin's response head after the request was sent; default 60s
	// UploadIdleTimeout bounds each step of a request body's way to the origin (the next bytes
	// from the client, their write to the origin), renewed with every chunk: a slow upload that
	// keeps moving is not cut off, a stalled one is. Default 30s.
	UploadIdleTimeout time.Duration
	// MaxResponseHeaderBytes bounds each response head an origin sends (status line and header
	// fields; each 1xx too); a longer one fails the request with 502 and closes the connection.
	// Default DefaultMaxResponseHeaderBytes (64 KiB).
	MaxResponseHeaderBytes int
	// MaxIdleConns bounds the idle origin connections kept for reuse, in all (at most 64 of them
	// per origin); past it the one idle longest is closed. Default 256.
	MaxIdleConns int
	// Resolver resolves origin names (see ResolverAt); nil is the system's. Whatever it answers,
	// each address is checked by the guard as it is dialled.
	Resolver *net.Resolver
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.ReadHeaderTimeout, 10*time.Second)
	def(&o.IdleTimeout, 90*time.Second)
	def(&o.DialTimeout, 10*time.Second)
	def(&o.TLSHandshakeTimeout, 10*time.Second)
	def(&o.ResponseHeaderTimeout, 60*time.Second)
	def(&o.UploadIdleTimeout, 30*time.Second)
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = 64 << 10
	}
	if o.MaxIdleConns <= 0 {
		o.MaxIdleConns = 256
	}
	if o.MaxResponseHeaderBytes <= 0 {
		o.MaxResponseHeaderBytes = DefaultMaxResponseHeaderBytes
	}
	if len(o.ConnectPorts) == 0 {
		o.ConnectPorts = []int{443, 8443}
	}
	return o
}

// Server is the forward proxy: absolute-URI HTTP requests and CONNECT, HTTPS intercepted with a CA or
// tunnelled blind, every request admitted by a Politeness first.
type Server struct {
	opts     Options
	pol      Politeness
	ca       *CA
	upstream *Upstream
	log      *slog.Logger
	metrics  *metrics

	h1        *h1 // every exchange with an origin, on the handler's goroutine
	outer     *http.Server
	inner     *http.Server // serves the requests inside intercepted CONNECTs
	intercept *connQueue
	targets   sync.Map // *tls.Conn -> CONNECT authority, read once by inner's ConnContext
	active    activity // handlers and tunnels in flight, for the drain
	// base is every request's parent context, cancelled when a drain runs out of time: it ends
	// waits for a turn, upgraded connections and tunnels that http.Server no longer tracks.
	base       context.Context
	cancelBase context.CancelFunc

	// Recovered, when set (before Serve), is called with every panic the proxy recovers: where
	// ("handler", "intercepted", "tunnel", or what RecordPanic was given) and the value.
	Recovered func(where string, v any)
}

// New returns a proxy reaching origins through upstream. ca may be nil: every CONNECT is then a blind
// tunnel. Metrics are registered on reg.
func New(opts Options, pol Politeness, ca *CA, upstream *Upstream, log *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	opts = opts.withDefaults()
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, pol: pol, ca: ca, upstream: upstream, log: log, metrics: m, intercept: newConnQueue()}
	s.base, s.cancelBase = context.WithCancel(context.Background())
	baseContext := func(net.Listener) context.Context { return s.base }
	s.h1 = newH1(upstream.dial, opts, &bufferPool{}, s.splice)
	errLog := slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	s.outer = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		IdleTimeout:       opts.IdleTimeout,
		MaxHeaderBytes:    opts.MaxHeaderBytes,
		ErrorLog:          errLog,
		BaseContext:       baseContext,
	}
	s.inner = &http.Server{
		Handler:           http.HandlerFunc(s.serveIntercepted),
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		IdleTimeout:       opts.IdleTimeout,
		MaxHeaderBytes:    opts.MaxHeaderBytes,
		ErrorLog:          errLog,
		BaseContext:       baseContext,
		ConnContext:       s.connContext,
	}
	return s, nil
}

// Serve accepts proxy clients on l until Shutdown. It returns http.ErrServerClosed after Shutdown.
func (s *Server) Serve(l net.Listener) error {
	go func() { _ = s.inner.Serve(s.intercept) }()
	return s.outer.Serve(l)
}

// ServeHTTP serves one request to the proxy: CONNECT, or an absolute URI.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rw := &recoverWriter{ResponseWriter: w}
	defer s.recoverRequest("handler", rw)
	w = rw
	switch {
	case r.Method == http.MethodConnect:
		s.connect(w, r)
	case r.URL.IsAbs() && (r.URL.Scheme == "http" || r.URL.Scheme == "https") && r.URL.Host != "":
		s.forward(w, r)
	default:
		s.refuse(w, r, badRequest("not a proxy request: send an absolute URI (http://host/path) or CONNECT"))
	}
}

func (s *Server) serveIntercepted(w http.ResponseWriter, r *http.Request) {
	rw := &recoverWriter{ResponseWriter: w}
	defer s.recoverRequest("intercepted", rw)
	w = rw
	target, _ := r.Context().Value(targetKey{}).(string)
	if target == "" { // cannot happen: every intercepted connection is registered
		s.refuse(w, r, badRequest("intercepted connection without a CONNECT target"))
		return
	}
	if r.Host != "" && !sameHost(r.Host, target) {
		// The tunnel was opened (and its certificate minted) for target: a request for another
		// host inside it would reach target under the other's name.
		s.refuse(w, r, &Refusal{Status: http.StatusMisdirectedRequest, Type: "http_request_denied", Reason: "misdirected",
			Details: "request host differs from the CONNECT host " + target})
		return
	}
	r.URL.Scheme, r.URL.Host = "https", target
	s.forward(w, r)
}

type targetKey struct{}

func (s *Server) connContext(ctx context.Context, c net.Conn) context.Context {
	if t, ok := s.targets.LoadAndDelete(c); ok {
		return context.WithValue(ctx, targetKey{}, t)
	}
	return ctx
}

// refuse answers with a refusal, logs it and counts its outcome.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, err error) {
	var ref *Refusal
	if !errors.As(err, &ref) {
		s.metrics.outcome("client_gone")
		return
	}
	s.metrics.outcome(ref.Reason)
	host := r.URL.Host
	if host == "" {
		host = r.Host
	}
	// Host and path only: queries carry tokens and signatures (decrypted HTTPS included).
	attrs := []any{"method", r.Method, "host", cut(host, 256), "path", cut(r.URL.Path, maxLoggedPath),
		"status", ref.Status, "reason", ref.Reason, "details", ref.Details}
	if ref.Err != nil {
		attrs = append(attrs, "error", logError(ref.Err))
	}
	s.log.Info("request refused", attrs...)
	ref.write(w)
}

// Shutdown stops accepting, lets requests and tunnels in flight finish until ctx ends, then closes
// what is left. Pending turns are cancelled with their clients' connections.
func (s *Server) Shutdown(ctx context.Context) error {
	s.intercept.close()
	var wg sync.WaitGroup
	var outerErr, innerErr error
	wg.Add(2)
	go func() { defer wg.Done(); outerErr = s.outer.Shutdown(ctx) }()
	go func() { defer wg.Done(); innerErr = s.inner.Shutdown(ctx) }()
	wg.Wait()
	err := s.active.wait(ctx)
	s.cancelBase() // anything still waiting or streaming ends now
	if err != nil {
		_ = s.outer.Close()
		_ = s.inner.Close()
		s.active.closeAll()
		s.active.waitAll()
	}
	s.upstream.transport.CloseIdleConnections()
	s.h1.close()
	return errors.Join(outerErr, innerErr, err)
}
