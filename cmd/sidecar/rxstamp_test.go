package main_test

import (
	"context"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// The site's clock is the kernel's: each accepted connection timestamps the segments it receives
// (SO_TIMESTAMPNS), and a request counts as arriving when its first bytes did. A test process
// descheduled for a few milliseconds on a loaded machine would otherwise record an arrival late and
// the next gap short, which is the very error the starvation tests look for.

// stampListener hands out stampConns.
type stampListener struct{ net.Listener }

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

// enableStamps sets SO_TIMESTAMPNS on l's socket, which accepted sockets inherit, so even the first
// request's segments carry a timestamp.
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

func stampContext(ctx context.Context, c net.Conn) context.Context {
	if sc, ok := c.(*stampConn); ok {
		return context.WithValue(ctx, connKey{}, sc)
	}
	return ctx
}

// arrivedAt is when r's first bytes reached the site's kernel (kernel true), or when they were read,
// or now.
func arrivedAt(r interface{ Context() context.Context }) (at time.Time, kernel bool) {
	if sc, ok := r.Context().Value(connKey{}).(*stampConn); ok {
		if at, kernel := sc.take(); !at.IsZero() {
			return at, kernel
		}
	}
	return time.Now().Round(0), false
}
