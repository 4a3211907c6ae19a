package redistest

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy is a TCP proxy in front of a server whose path can be cut without closing anything, as a
// network partition looks to one client: Blackhole stops forwarding in both directions while every
// socket stays open (new connections are still accepted, nothing answers), Heal forwards again.
// Bytes sent during a blackhole are dropped, and the connections that lost bytes are closed when
// the path heals (their byte streams have gaps, as a connection a long partition outlasted is reset
// once packets flow again); connections that lost nothing carry on.
type Proxy struct {
	Addr string // host:port on loopback, to give the client instead of the server's

	target string
	ln     net.Listener

	mu    sync.Mutex
	cut   bool
	conns map[*proxyConn]struct{}
}

type proxyConn struct {
	client, server net.Conn
	lost           bool // guarded by Proxy.mu
}

// StartProxy listens on a free loopback port and forwards each connection to target until the test
// ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: proxy: %v", err)
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, ln: ln, conns: map[*proxyConn]struct{}{}}
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Blackhole stops forwarding: what either side sends is dropped, no socket is closed.
func (p *Proxy) Blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
}

// Heal forwards again, after closing the connections that lost bytes during the blackhole.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
	for c := range p.conns {
		if c.lost {
			c.closeLocked(p)
		}
	}
}

func (p *Proxy) accept() {
	for {
		cc, err := p.ln.Accept()
		if err != nil {
			return
		}
		sc, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = cc.Close()
			continue
		}
		c := &proxyConn{client: cc, server: sc}
		p.mu.Lock()
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		go p.pipe(c, cc, sc)
		go p.pipe(c, sc, cc)
	}
}

// pipe copies from src to dst, dropping what it reads while the path is cut.
func (p *Proxy) pipe(c *proxyConn, src, dst net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			cut := p.cut
			if cut {
				c.lost = true
			}
			p.mu.Unlock()
			if !cut {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					err = werr
				}
			}
		}
		if err != nil {
			p.mu.Lock()
			defer p.mu.Unlock()
			if errors.Is(err, io.EOF) && p.cut {
				c.lost = true // a close the partition does not let through: Heal delivers it
				return
			}
			c.closeLocked(p)
			return
		}
	}
}

func (c *proxyConn) closeLocked(p *Proxy) {
	_ = c.client.Close()
	_ = c.server.Close()
	delete(p.conns, c)
}

func (p *Proxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.closeLocked(p)
	}
}
