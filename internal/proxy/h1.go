package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"
)

// h1 forwards every request (plain, and intercepted HTTPS; upgrades and Expect: 100-continue
// included) over pooled HTTP/1.1 connections on the handler's own goroutine, readying the
// connection before the turn's start. It is the one place that applies the header rules
// (headers.go), passes 1xx responses and trailers on and streams bodies. http.Transport hands each
// request to a writer goroutine and each response back from a reader goroutine; on a crawler's
// one-request-at-a-time path those two wake-ups are most of what a proxy adds to latency.
type h1 struct {
	dial          func(ctx context.Context, addr string) (net.Conn, error)
	headerTimeout time.Duration // from the request written to the response head read
	uploadIdle    time.Duration // each step of the request's way to the origin (see idleBody)
	tlsTimeout    time.Duration
	idleTimeout   time.Duration
	maxHead       int // bytes of one response head
	maxIdle       int // in all
	maxIdlePer    int // per origin
	staleAfter    time.Duration
	expectTimeout time.Duration // for the origin's 100 Continue before a body is sent anyway
	buffers       *bufferPool
	// splice copies an upgraded exchange both ways until it ends (Server.splice), calling sent
	// (when not nil) after the first bytes reached its second connection.
	splice func(a, b net.Conn, sent func())

	mu    sync.Mutex
	idle  map[string][]*h1conn // by scheme://host:port, most recently used last
	nIdle int
	quit  chan struct{}
}

type h1conn struct {
	net.Conn
	key  string      // the pool's: scheme://host:port as requested
	src  *headReader // under br: bounds the response heads
	br   *bufio.Reader
	bw   *bufio.Writer
	used time.Time // put back in the pool
}

func newH1(dial func(context.Context, string) (net.Conn, error), o Options, buffers *bufferPool, splice func(a, b net.Conn, sent func())) *h1 {
	h := &h1{dial: dial, headerTimeout: o.ResponseHeaderTimeout, uploadIdle: o.UploadIdleTimeout, tlsTimeout: o.TLSHandshakeTimeout, idleTimeout: o.IdleTimeout, maxHead: o.MaxResponseHeaderBytes, maxIdle: o.MaxIdleConns, maxIdlePer: min(64, o.MaxIdleConns),
		staleAfter: staleAfter, expectTimeout: expectContinueTimeout, buffers: buffers, splice: splice, idle: map[string][]*h1conn{}, quit: make(chan struct{})}
	go h.reap()
	return h
}

// errNoResponse marks a failure before any byte of the response arrived on a reused connection:
// the origin closed it while idle, and an idempotent request may be sent again.
var errNoResponse = errors.New("proxy: reused connection closed before the response")

// serve readies a connection to r's origin (dialled, TLS done), calls wait, then sends r and streams
// the response to w: what the origin sees starts at the gate, not a handshake later. sent is called
// once the request's head is on the connection (each time it is sent). It returns an
// error, for the caller to answer, only when nothing was written to w yet.
//
// exchange is the context of the exchange with the origin; it outlives the client (r's context). A
// client that goes away before r is sent stops it being sent; after, the origin is still working on it, so the
// exchange runs to its end (the response drained, within limits) while the turn stays held: the
// origin never sees more requests in flight than the turn allows, whatever crawlers cancel.
func (h *h1) serve(w http.ResponseWriter, r *http.Request, exchange context.Context, wait func(context.Context) error, sent func(), onHead func(*http.Response)) error {
	ctx := r.Context()
	out := outgoing(r)
	tlsOn, name := out.URL.Scheme == "https", out.URL.Hostname()
	addr := out.URL.Host
	if out.URL.Port() == "" {
		port := "80"
		if tlsOn {
			port = "443"
		}
		addr = net.JoinHostPort(name, port)
	}
	key := out.URL.Scheme + "://" + addr
	if a, ok := pinOf(exchange); ok { // pinned connections are pooled by the address they were dialled to
		key += "@" + a.String()
	}
	idempotent := out.Body == nil && (out.Method == http.MethodGet || out.Method == http.MethodHead || out.Method == http.MethodOptions)
	retried := false
	c, reused, err := h.get(exchange, key, tlsOn, addr, name)
	for {
		if err != nil {
			return err
		}
		if wait != nil {
			if err := wait(ctx); err != nil {
				h.put(c) // unused
				return err
			}
			wait = nil // a retry goes at once: the turn has started
			if reused && !idempotent && time.Since(c.used) > h.staleAfter {
				// A request that cannot be sent again gets no connection the origin may have
				// closed while this one waited for its turn.
				_ = c.Close()
				if c, err = h.dialConn(exchange, key, tlsOn, addr, name); err != nil {
					return err
				}
				reused = false
			}
		}
		if err := ctx.Err(); err != nil { // the client left: send nothing
			h.put(c)
			return err
		}
		if reused && !c.reusable() { // the origin sent more, or closed it: nothing sent yet, so any request may go
			_ = c.Close()
			if c, err = h.dialConn(exchange, key, tlsOn, addr, name); err != nil {
				return err
			}
			reused = false
		}
		resp, rerr := h.roundTrip(exchange, c, out, reused, w, sent)
		if errors.Is(rerr, errNoResponse) && idempotent && !retried {
			// Once, on a new connection: another pooled one may be just as stale.
			retried = true
			c, err = h.dialConn(exchange, key, tlsOn, addr, name)
			reused = false
			continue
		}
		if rerr != nil {
			return rerr
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			return h.upgrade(w, c, out, resp, onHead)
		}
		h.stream(w, r, c, resp, onHead)
		return nil
	}
}

// roundTrip writes out on c and reads the response head, forwarding 1xx responses to w. The
// connection is closed on failure.
func (h *h1) roundTrip(ctx context.Context, c *h1conn, out *http.Request, reused bool, w http.ResponseWriter, sent func()) (*http.Response, error) {
	// ctx ending (the turn's lease lost, the drain out of time; not the client leaving) ends the
	// exchange at once.
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	fail := func(err error) (*http.Response, error) {
		stop()
		_ = c.Close()
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, err
	}
	info := func(info *http.Response) {
		incoming(info)
		copyHeader(w.Header(), info.Header)
		w.WriteHeader(info.StatusCode)
		clear(w.Header())
	}
	early, err := h.write(ctx, c, out, w, sent, info)
	if err != nil {
		return fail(err)
	}
	resp := early // a final answer to Expect: 100-continue, read before the body
	if resp == nil {
		// The response head is waited for once the request is written, however long its body took.
		_ = c.SetReadDeadline(time.Now().Add(h.headerTimeout))
		if ctx.Err() != nil { // the hook may have run before the deadline above replaced its own
			return fail(ctx.Err())
		}
		if _, err := c.br.Peek(1); err != nil {
			if reused && (errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET)) {
				return fail(errNoResponse)
			}
			return fail(err)
		}
		if resp, err = readHead(c.src, c.br, out, h.maxHead, info, false); err != nil {
			return fail(err)
		}
	}
	_ = c.SetDeadline(time.Time{}) // the body streams as long as the turn's context allows
	resp.Body = &watched{ReadCloser: resp.Body, stop: stop}
	return resp, nil
}

// watched unregisters the cancellation hook when the body is closed.
type watched struct {
	io.ReadCloser
	stop func() bool
}

func (b *watched) Close() error { b.stop(); return b.ReadCloser.Close() }

// stream sends resp to the client, then returns c to the pool if the exchange left it clean.
func (h *h1) stream(w http.ResponseWriter, r *http.Request, c *h1conn, resp *http.Response, onHead func(*http.Response)) {
	incoming(resp)
	onHead(resp)
	copyHeader(w.Header(), resp.Header)
	announced := len(resp.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		w.Header().Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(resp.StatusCode)
	buf := h.buffers.Get()
	clientErr, originErr := copyBody(w, resp.Body, buf, resp.ContentLength == -1)
	if clientErr != nil && originErr == nil {
		// The client went away: read the rest (bounded) so the origin is done before the turn is.
		_ = c.SetReadDeadline(time.Now().Add(drainTime))
		var n int64
		n, originErr = io.CopyBuffer(io.Discard, io.LimitReader(resp.Body, drainBytes), buf)
		if originErr == nil && n == drainBytes {
			originErr = errTooLong
		}
		_ = c.SetReadDeadline(time.Time{})
	}
	h.buffers.Put(buf)
	_ = resp.Body.Close()
	for k, v := range resp.Trailer {
		w.Header()[http.TrailerPrefix+k] = v
	}
	if originErr != nil || resp.Close || r.Close {
		_ = c.Close()
		return
	}
	h.put(c)
}

// expectContinueTimeout is how long a request with Expect: 100-continue waits for the origin's
// 100 Continue (or final answer) before its body is sent anyway, as net/http's Transport is set up.
const expectContinueTimeout = time.Second

// staleAfter: a pooled connection idle for longer is not used for a request that cannot be retried
// once its turn has come (the origin may have closed it meanwhile).
const staleAfter = time.Second

// After the client left, the rest of a response is read for at most drainTime and drainBytes.
const (
	drainTime  = 10 * time.Second
	drainBytes = 1 << 20
)

var errTooLong = errors.New("proxy: response too long to drain")

// copyBody copies the origin's body to the client, flushing after every read when it streams (no
// Content-Length), so a slow origin's bytes are not held back. It stops at the first error of
// either side, saying whose.
func copyBody(w http.ResponseWriter, body io.Reader, buf []byte, stream bool) (clientErr, originErr error) {
	rc := http.NewResponseController(w)
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err, nil
			}
			if stream {
				if err := rc.Flush(); err != nil {
					return err, nil
				}
			}
		}
		if rerr == io.EOF {
			return nil, nil
		}
		if rerr != nil {
			return nil, rerr
		}
	}
}

func copyHeader(dst, src http.Header) {
	for k, v := range src {
		dst[k] = append(dst[k], v...)
	}
}

// get returns an idle connection for key (scheme://host:port), or a new one to addr, with TLS for
// serverName when tlsOn.
func (h *h1) get(ctx context.Context, key string, tlsOn bool, addr, serverName string) (*h1conn, bool, error) {
	h.mu.Lock()
	for list := h.idle[key]; len(list) > 0; list = h.idle[key] {
		c := list[len(list)-1]
		h.setIdle(key, list[:len(list)-1])
		if time.Since(c.used) < h.idleTimeout {
			h.mu.Unlock()
			return c, true, nil
		}
		_ = c.Close()
	}
	h.mu.Unlock()
	c, err := h.dialConn(ctx, key, tlsOn, addr, serverName)
	return c, false, err
}

// dialConn opens a new connection for key.
func (h *h1) dialConn(ctx context.Context, key string, tlsOn bool, addr, serverName string) (*h1conn, error) {
	conn, err := h.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	if tlsOn {
		cfg := upstreamTLS.Clone()
		cfg.ServerName, cfg.NextProtos = serverName, []string{"http/1.1"}
		tc := tls.Client(conn, cfg)
		hctx, cancel := context.WithTimeout(ctx, h.tlsTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			_ = conn.Close()
			return nil, err
		}
		conn = tc
	}
	src := &headReader{r: conn, left: -1}
	return &h1conn{Conn: conn, key: key, src: src, br: bufio.NewReaderSize(src, 4<<10), bw: bufio.NewWriterSize(conn, 4<<10)}, nil
}

func (h *h1) put(c *h1conn) {
	key := c.key
	if c.br.Buffered() > 0 { // the origin sent more than the response: not reusable
		_ = c.Close()
		return
	}
	c.used = time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.quit:
		_ = c.Close()
		return
	default:
	}
	if len(h.idle[key]) >= h.maxIdlePer {
		_ = c.Close()
		return
	}
	if h.nIdle >= h.maxIdle {
		h.evictOldest()
	}
	h.setIdle(key, append(h.idle[key], c))
}

// evictOldest closes the connection idle for longest, of any origin: a crawler moving on through
// many hosts keeps its pool for the hosts it visits now. Called with mu held; O(hosts), which
// maxIdle bounds.
func (h *h1) evictOldest() {
	var oldest string
	var at time.Time
	for key, list := range h.idle {
		if u := list[0].used; oldest == "" || u.Before(at) {
			oldest, at = key, u
		}
	}
	if list := h.idle[oldest]; len(list) > 0 {
		_ = list[0].Close()
		h.setIdle(oldest, list[1:])
	}
}

// setIdle replaces key's idle list, keeping the count. Called with mu held.
func (h *h1) setIdle(key string, list []*h1conn) {
	h.nIdle += len(list) - len(h.idle[key])
	if len(list) == 0 {
		delete(h.idle, key)
		return
	}
	h.idle[key] = list
}

// reap closes connections idle for longer than idleTimeout, so hosts not visited again leave no
// sockets behind.
func (h *h1) reap() {
	t := time.NewTicker(max(h.idleTimeout/2, time.Second))
	defer t.Stop()
	for {
		select {
		case <-h.quit:
			return
		case <-t.C:
		}
		h.mu.Lock()
		for addr, list := range h.idle {
			keep := list[:0]
			for _, c := range list {
				if time.Since(c.used) < h.idleTimeout {
					keep = append(keep, c)
				} else {
					_ = c.Close()
				}
			}
			h.setIdle(addr, keep)
		}
		h.mu.Unlock()
	}
}

// close closes every idle connection and stops the reaper; connections in use close when done.
func (h *h1) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.quit:
		return
	default:
		close(h.quit)
	}
	for addr, list := range h.idle {
		for _, c := range list {
			_ = c.Close()
		}
		h.setIdle(addr, nil)
	}
}
