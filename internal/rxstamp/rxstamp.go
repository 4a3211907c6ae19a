// Package rxstamp times an HTTP server's requests by the kernel's receive timestamps
// (SO_TIMESTAMPNS) of their first bytes, for test origins that judge politeness by the gaps between
// arrivals: a test process descheduled for a few milliseconds on a loaded machine would otherwise
// record an arrival late and the next gap short, the very error politeness tests look for.
package rxstamp

import (
	"context"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// stampListener hands out stampConns.
type stampListener struct{ net.Listener }

// Accept enables receive timestamps on the accepted connection.
func (l stampListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c, nil
	}
	_ = rc.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	})
	return &stampConn{TCPConn: tc, raw: rc}, nil
}

// Listener returns l timestamping what its connections receive. SO_TIMESTAMPNS is set on l's
// socket too, which accepted sockets inherit, so even a connection's first segments carry a stamp.
func Listener(l net.Listener) net.Listener {
	enableStamps(l)
	return stampListener{l}
}

func enableStamps(l net.Listener) {
	if tl, ok := l.(*net.TCPListener); ok {
		if rc, err := tl.SyscallConn(); err == nil {
			_ = rc.Control(func(fd uintptr) {
				_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
			})
		}
	}
}

// stampConn reads with recvmsg and keeps the kernel's receive time of the first bytes read since
// the last take.
type stampConn struct {
	*net.TCPConn
	raw syscall.RawConn

	mu     sync.Mutex
	first  time.Time
	kernel bool // first is the kernel's
}

func (c *stampConn) Read(p []byte) (int, error) {
	var (
		n, oobn int
		rerr    error
		oob     [64]byte
	)
	err := c.raw.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = syscall.Recvmsg(int(fd), p, oob[:], 0)
		return rerr != syscall.EAGAIN
	})
	if err != nil {
		return 0, err
	}
	if rerr != nil {
		return 0, rerr
	}
	if n == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	at, stamped := time.Now().Round(0), false // wall clock, as the kernel's
	if msgs, err := syscall.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, m := range msgs {
			if m.Header.Level == syscall.SOL_SOCKET && m.Header.Type == syscall.SO_TIMESTAMPNS && len(m.Data) >= int(unsafe.Sizeof(syscall.Timespec{})) {
				ts := (*syscall.Timespec)(unsafe.Pointer(&m.Data[0]))
				at, stamped = time.Unix(ts.Sec, ts.Nsec), true
			}
		}
	}
	c.mu.Lock()
	if c.first.IsZero() {
		c.first, c.kernel = at, stamped
	}
	c.mu.Unlock()
	return n, nil
}

// take returns when the bytes read since the previous take began to arrive, and forgets it.
func (c *stampConn) take() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, kernel := c.first, c.kernel
	c.first = time.Time{}
	return at, kernel
}

type connKey struct{}

// ConnContext is an http.Server's ConnContext for Listener's connections.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if sc, ok := c.(*stampConn); ok {
		return context.WithValue(ctx, connKey{}, sc)
	}
	return ctx
}

// ArrivedAt is when r's first bytes reached the server's kernel (kernel true), or when they were
// read, or now.
func ArrivedAt(r interface{ Context() context.Context }) (at time.Time, kernel bool) {
	if sc, ok := r.Context().Value(connKey{}).(*stampConn); ok {
		if at, kernel := sc.take(); !at.IsZero() {
			return at, kernel
		}
	}
	return time.Now().Round(0), false
}
