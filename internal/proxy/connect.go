package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/crawlpolite/crawlpolite/internal/policy"
)

// connect handles CONNECT authority: refused when the port is not allowed or the authority is an
// address the guard refuses; else intercepted (TLS terminated with a minted certificate and each
// request inside forwarded like a plain one) or, for tunnel hosts, a blind tunnel holding one turn.
func (s *Server) connect(w http.ResponseWriter, r *http.Request) {
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil || host == "" {
		s.refuse(w, r, badRequest("CONNECT needs host:port"))
		return
	}
	if ref := s.checkConnect(host, port); ref != nil {
		s.refuse(w, r, ref)
		return
	}
	if s.ca == nil || s.pol.Tunnel(r.Host) {
		s.tunnel(w, r)
		return
	}
	conn, ok := s.hijack(w, r)
	if !ok {
		return
	}
	// The handshake runs here, under this handler's recover, rather than in the inner server.
	tc := tls.Server(conn, &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if hello.ServerName == "" {
				return s.ca.Certificate(host)
			}
			if !sameHost(hello.ServerName, host) {
				// The tunnel was admitted, and will be dialled, for host: a leaf for another name
				// would let the client send that name's requests to host under host's politeness.
				return nil, errSNIMismatch
			}
			return s.ca.Certificate(hello.ServerName)
		},
	})
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.TLSHandshakeTimeout)
	err = tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		_ = conn.Close()
		if errors.Is(err, errSNIMismatch) {
			s.metrics.outcome("sni_mismatch")
			s.log.Info("tunnel refused", "host", r.Host, "reason", "sni_mismatch", "sni", cut(tc.ConnectionState().ServerName, 256))
		} else {
			s.log.Debug("client TLS handshake failed", "host", r.Host, "error", err.Error())
		}
		return
	}
	s.metrics.outcome("intercepted")
	s.targets.Store(tc, r.Host)
	if !s.intercept.push(tc) {
		s.targets.Delete(tc)
		_ = conn.Close()
	}
}

var errSNIMismatch = errors.New("proxy: TLS server name is not the CONNECT host")

// sameHost reports whether two authorities name the same host and port once normalized (case,
// IDNA, trailing dot, default port 443).
func sameHost(a, b string) bool {
	oa, erra := policy.ParseOrigin("https", a)
	ob, errb := policy.ParseOrigin("https", b)
	return erra == nil && errb == nil && oa == ob
}

// checkConnect refuses ports outside the allowed list and address literals the guard refuses, before
// answering 200: a client learns at once rather than at its first request inside.
func (s *Server) checkConnect(host, port string) *Refusal {
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return badRequest("CONNECT port " + strconv.Quote(port) + " is not a port")
	}
	if !s.opts.AnyConnectPort && !slices.Contains(s.opts.ConnectPorts, p) {
		return &Refusal{Status: http.StatusForbidden, Type: "http_request_denied", Reason: "connect_port",
			Details: fmt.Sprintf("CONNECT to port %d is not allowed", p)}
	}
	if a, err := netip.ParseAddr(host); err == nil && !s.upstream.guard.AllowedAddrPort(netip.AddrPortFrom(a, uint16(p))) {
		return &Refusal{Status: http.StatusForbidden, Type: "destination_ip_prohibited", Reason: "destination",
			Details: "destination address is in a range not allowed (--allow-cidr)"}
	}
	return nil
}

// hijack answers 200 to a CONNECT and takes its connection over. Bytes the client sent early (the
// TLS ClientHello, pipelined after the CONNECT) stay readable through the returned conn.
func (s *Server) hijack(w http.ResponseWriter, r *http.Request) (net.Conn, bool) {
	conn, rw, err := http.NewResponseController(w).Hijack()
	if errors.Is(err, http.ErrNotSupported) {
		s.refuse(w, r, badRequest("CONNECT is supported over HTTP/1.1 only"))
		return nil, false
	}
	if err != nil {
		s.log.Debug("hijack failed", "error", err.Error())
		return nil, false
	}
	hijacked(w, conn)
	_ = conn.SetDeadline(time.Time{}) // the server's header timeout no longer applies
	if _, err := io.WriteString(conn, "HTTP/1.1 200 Connection established\r\nVia: "+via+"\r\n\r\n"); err != nil {
		_ = conn.Close()
		return nil, false
	}
	if rw.Reader.Buffered() > 0 {
		return &bufferedConn{Conn: conn, r: rw.Reader}, true
	}
	return conn, true
}

// tunnel admits a CONNECT as one turn held for the tunnel's life, dials the origin and copies bytes
// both ways until either side closes.
func (s *Server) tunnel(w http.ResponseWriter, r *http.Request) {
	done := s.active.start()
	defer done()
	r.URL.Scheme, r.URL.Host = "https", r.Host
	turn, err := s.pol.Admit(r.Context(), r)
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	defer turn.Release()
	ctx, cancel := context.WithTimeout(withPin(r.Context(), turn), s.opts.DialTimeout)
	origin, err := s.upstream.dial(ctx, r.Host)
	cancel()
	if err != nil {
		s.refuse(w, r, Classify(err))
		return
	}
	if err := turn.Wait(r.Context()); err != nil { // dialled first: the tunnel opens at the gate
		_ = origin.Close()
		s.refuse(w, r, err)
		return
	}
	conn, ok := s.hijack(w, r)
	if !ok {
		_ = origin.Close()
		return
	}
	s.metrics.outcome("tunnel")
	s.metrics.inFlight.Inc()
	defer s.metrics.inFlight.Dec()
	untrack := s.active.track(conn, origin)
	defer untrack()
	stop := turn.AfterLost(func() { _ = conn.Close(); _ = origin.Close() }) // a lost hold ends the tunnel
	s.splice(conn, origin, turn.Sent)                                       // the tunnel starts at the origin with the client's first bytes
	stop()
}

var errPanicked = errors.New("proxy: panic in a tunnel copier")

// splice copies both ways until both sides end, or one fails, then closes both. sentB is called
// once the first bytes have been written to b.
func (s *Server) splice(a, b net.Conn, sentB func()) {
	errc := make(chan error, 2)
	cp := func(dst, src net.Conn, sent func()) {
		defer func() {
			if v := recover(); v != nil {
				s.RecordPanic("tunnel", v)
				errc <- errPanicked
			}
		}()
		err := copyFirst(dst, src, sent)
		if err == nil {
			_, err = io.Copy(dst, src) // the connections' own ReadFrom/WriteTo: splice(2) where it can
		}
		if tc, ok := dst.(interface{ CloseWrite() error }); ok && err == nil {
			_ = tc.CloseWrite() // half-close: let the other direction finish
		}
		errc <- err
	}
	go cp(a, b, nil)
	go cp(b, a, sentB)
	for range 2 {
		if err := <-errc; err != nil {
			_ = a.Close()
			_ = b.Close()
		}
	}
	_ = a.Close()
	_ = b.Close()
}

// copyFirst copies src's first read to dst and then calls sent (when not nil), so sent comes after
// those bytes were handed to dst's connection. EOF is not an error.
func copyFirst(dst, src net.Conn, sent func()) error {
	if sent == nil {
		return nil
	}
	buf := make([]byte, 16<<10)
	n, err := src.Read(buf)
	if n > 0 {
		if _, werr := dst.Write(buf[:n]); werr != nil {
			return werr
		}
		sent()
	}
	if errors.Is(err, io.EOF) {
		return nil // io.Copy sees the EOF again and half-closes
	}
	return err
}

// bufferedConn is a hijacked connection whose first bytes are still in the server's reader.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *bufferedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
