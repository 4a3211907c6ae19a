package proxy

import (
	"context"
	"net"
	"sync"
)

// connQueue is the listener of the inner server: intercepted connections are pushed into it.
type connQueue struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newConnQueue() *connQueue {
	return &connQueue{ch: make(chan net.Conn), done: make(chan struct{})}
}

// push hands c to the inner server; false once the queue is closed.
func (q *connQueue) push(c net.Conn) bool {
	select {
	case q.ch <- c:
		return true
	case <-q.done:
		return false
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error { q.close(); return nil }
func (q *connQueue) close()       { q.once.Do(func() { close(q.done) }) }
func (q *connQueue) Addr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} // nominal: connections come from CONNECTs
}

// activity counts handlers and tunnels in flight and remembers the connections http.Server no longer
// tracks once hijacked, so that a drain can wait for them and, past its deadline, close them.
type activity struct {
	mu    sync.Mutex
	n     int
	idle  chan struct{} // closed when n drops to 0; replaced when it rises again
	conns map[net.Conn]struct{}
}

// start counts one more in flight; the returned func counts it out.
func (a *activity) start() func() {
	a.mu.Lock()
	if a.n == 0 {
		a.idle = make(chan struct{})
	}
	a.n++
	a.mu.Unlock()
	return func() {
		a.mu.Lock()
		a.n--
		if a.n == 0 {
			close(a.idle)
		}
		a.mu.Unlock()
	}
}

// track remembers hijacked connections until the returned func is called.
func (a *activity) track(cs ...net.Conn) func() {
	a.mu.Lock()
	if a.conns == nil {
		a.conns = map[net.Conn]struct{}{}
	}
	for _, c := range cs {
		a.conns[c] = struct{}{}
	}
	a.mu.Unlock()
	return func() {
		a.mu.Lock()
		for _, c := range cs {
			delete(a.conns, c)
		}
		a.mu.Unlock()
	}
}

// wait returns when nothing is in flight, or ctx's error when ctx ends first.
func (a *activity) wait(ctx context.Context) error {
	a.mu.Lock()
	if a.n == 0 {
		a.mu.Unlock()
		return nil
	}
	idle := a.idle
	a.mu.Unlock()
	select {
	case <-idle:
		return a.wait(ctx) // something may have started meanwhile
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *activity) waitAll() { _ = a.wait(context.Background()) }

// closeAll closes every tracked connection, ending the tunnels using them.
func (a *activity) closeAll() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for c := range a.conns {
		_ = c.Close()
	}
}
