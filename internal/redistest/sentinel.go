package redistest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// SentinelMaster is the name the sentinels of StartSentinel monitor.
const SentinelMaster = "crawlpolite"

// Sentinel is a Sentinel-managed primary: one master, two replicas and three sentinels (quorum 2),
// all from Debian's redis-server and redis-sentinel.
type Sentinel struct {
	Master    *Server // the master at start; after a failover, ask Current
	Replicas  []*Server
	Sentinels []*Server
}

// StartSentinel starts the topology with a fast failure detection (down-after 1s) and returns once
// every sentinel monitors the master and knows both replicas and the other sentinels.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	bin := sentinelBin(t)
	st := &Sentinel{Master: Start(t, "--repl-diskless-sync-delay", "0")}
	for range 2 {
		r := Start(t, "--replicaof", "127.0.0.1", fmt.Sprint(st.Master.Port()), "--repl-diskless-sync-delay", "0")
		st.Replicas = append(st.Replicas, r)
	}
	for range 3 {
		s := &Server{Dir: t.TempDir()}
		conf := filepath.Join(s.Dir, "sentinel.conf")
		body := fmt.Sprintf("bind 127.0.0.1\nprotected-mode no\ndir %s\n"+
			"sentinel monitor %s 127.0.0.1 %d 2\nsentinel down-after-milliseconds %[2]s 1000\n"+
			"sentinel failover-timeout %[2]s 10000\nsentinel parallel-syncs %[2]s 2\n",
			s.Dir, SentinelMaster, st.Master.Port())
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		s.pre = []string{conf}
		if strings.HasSuffix(bin, "redis-server") {
			s.args = []string{"--sentinel"}
		}
		if err := s.start(bin, freePort(t)); err != nil {
			t.Fatalf("redistest: sentinel: %v", err)
		}
		t.Cleanup(s.Stop)
		st.Sentinels = append(st.Sentinels, s)
	}
	if err := st.waitReady(20 * time.Second); err != nil {
		t.Fatalf("redistest: %v", err)
	}
	return st
}

// sentinelBin is Debian's redis-sentinel, or redis-server in sentinel mode (the same binary) when
// the redis-sentinel package is not installed.
func sentinelBin(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/redis-sentinel"); err == nil {
		return "/usr/bin/redis-sentinel"
	}
	return lookBin(t, "redis-server")
}

// Addrs returns the sentinels' addresses.
func (st *Sentinel) Addrs() []string {
	out := make([]string, len(st.Sentinels))
	for i, s := range st.Sentinels {
		out[i] = s.Addr
	}
	return out
}

// Current returns the master as the first answering sentinel reports it.
func (st *Sentinel) Current() string {
	for _, s := range st.Sentinels {
		if r, err := masterAddr(s); err == nil {
			return r
		}
	}
	return ""
}

// WaitFailover waits until every sentinel names a master other than old and that server answers as
// master, and returns the time waited.
func (st *Sentinel) WaitFailover(old string, timeout time.Duration) (string, time.Duration, error) {
	start := time.Now()
	for time.Since(start) < timeout {
		if addr, ok := st.agreed(); ok && addr != old {
			for _, r := range append([]*Server{st.Master}, st.Replicas...) {
				if r.Addr == addr && r.Role() == "master" {
					return addr, time.Since(start), nil
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "", time.Since(start), fmt.Errorf("redistest: no failover away from %s after %v", old, timeout)
}

// agreed returns the master address when every sentinel reports the same one.
func (st *Sentinel) agreed() (string, bool) {
	addr := ""
	for _, s := range st.Sentinels {
		r, err := masterAddr(s)
		if err != nil || (addr != "" && r != addr) {
			return "", false
		}
		addr = r
	}
	return addr, addr != ""
}

func (st *Sentinel) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ok := true
		for _, s := range st.Sentinels {
			info, err := s.Do("INFO", "sentinel")
			if err != nil || !strings.Contains(info, "status=ok") || !strings.Contains(info, "slaves=2,sentinels=3") {
				ok = false
				break
			}
		}
		if ok {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("sentinels not ready after %v", timeout)
}

// masterAddr asks one sentinel for the master's host:port. The reply is an array of two bulk
// strings, which do does not decode; INFO sentinel carries the same address in one line.
func masterAddr(s *Server) (string, error) {
	info, err := s.Do("INFO", "sentinel")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(info, "\n") {
		if _, rest, ok := strings.Cut(line, "address="); ok {
			addr, _, _ := strings.Cut(rest, ",")
			return strings.TrimSpace(addr), nil
		}
	}
	return "", fmt.Errorf("redistest: sentinel %s reports no master", s.Addr)
}
