package redistest

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Pause stops the server with SIGSTOP: the kernel still accepts connections and buffers requests,
// but nothing answers, as a Redis stuck in a long command or a frozen VM looks to clients.
func (s *Server) Pause() { _ = s.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume continues a paused server with SIGCONT.
func (s *Server) Resume() { _ = s.cmd.Process.Signal(syscall.SIGCONT) }

// Kill kills the server with SIGKILL without waiting for a replacement; Stop is the same and waits
// for the exit. Named for what a fault test does.
func (s *Server) Kill() { s.Stop() }

// Role returns "master" or "slave" as the server reports it in INFO replication.
func (s *Server) Role() string {
	info, err := s.Do("INFO", "replication")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "role:"); ok {
			return v
		}
	}
	return ""
}

// Slot returns the hash slot of key, computed by the server (CLUSTER KEYSLOT).
func (c *Cluster) Slot(key string) (int, error) {
	for _, n := range c.Nodes {
		r, err := n.Do("CLUSTER", "KEYSLOT", key)
		if err != nil {
			continue
		}
		return strconv.Atoi(strings.TrimPrefix(r, ":"))
	}
	return 0, fmt.Errorf("redistest: no node answers CLUSTER KEYSLOT")
}

// MasterFor returns the node that serves key's slot as master, as the live nodes see it (CLUSTER
// NODES of the first node that answers), or nil when none does.
func (c *Cluster) MasterFor(key string) *Server {
	slot, err := c.Slot(key)
	if err != nil {
		return nil
	}
	for _, n := range c.Nodes {
		nodes, err := n.Do("CLUSTER", "NODES")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(nodes, "\n") {
			f := strings.Fields(line)
			// id addr flags master ping pong epoch state slot...
			if len(f) < 9 || !strings.Contains(f[2], "master") || strings.Contains(f[2], "fail") {
				continue
			}
			for _, r := range f[8:] {
				lo, hi, _ := strings.Cut(r, "-")
				if hi == "" {
					hi = lo
				}
				a, err1 := strconv.Atoi(lo)
				b, err2 := strconv.Atoi(hi)
				if err1 == nil && err2 == nil && a <= slot && slot <= b {
					return c.byAddr(strings.SplitN(f[1], "@", 2)[0])
				}
			}
		}
		return nil
	}
	return nil
}

func (c *Cluster) byAddr(addr string) *Server {
	for _, n := range c.Nodes {
		if n.Addr == addr {
			return n
		}
	}
	return nil
}

// WaitMaster waits until key's slot is served by a live master other than old (a replica promoted
// after old failed) and returns it with the time waited.
func (c *Cluster) WaitMaster(key string, old *Server, timeout time.Duration) (*Server, time.Duration, error) {
	start := time.Now()
	for time.Since(start) < timeout {
		if m := c.MasterFor(key); m != nil && m != old {
			if _, err := m.Do("PING"); err == nil && m.Role() == "master" {
				return m, time.Since(start), nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, time.Since(start), fmt.Errorf("redistest: no new master for %q after %v", key, timeout)
}

// StartBlackhole listens on a free loopback port, accepts every connection and never answers nor
// closes it until the test ends: a Redis behind a dead proxy or a black-holed route, after the
// handshake. It returns the address.
func StartBlackhole(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: blackhole: %v", err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return l.Addr().String()
}
