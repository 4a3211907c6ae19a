package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long a server may take to accept connections.
const startTimeout = 10 * time.Second

// Server is one redis-server process started by a test.
type Server struct {
	Addr string // host:port on loopback
	Dir  string // working directory (config files, cluster state)

	cmd  *exec.Cmd
	pre  []string // arguments before --port (a config file)
	args []string
	done chan struct{}
}

// Start starts a standalone redis-server on a free loopback port and stops it when the test ends.
// Extra arguments are passed to redis-server as `--name value` pairs.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	bin := lookBin(t, "redis-server")
	s := &Server{Dir: t.TempDir()}
	s.args = append([]string{"--save", "", "--appendonly", "no", "--bind", "127.0.0.1",
		"--protected-mode", "no", "--dir", s.Dir}, extra...)
	if err := s.start(bin, freePort(t)); err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Port returns the server's TCP port.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr)
	n, _ := strconv.Atoi(p)
	return n
}

func (s *Server) start(bin string, port int) error {
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := append(append(append([]string{}, s.pre...), "--port", strconv.Itoa(port)), s.args...)
	s.cmd = exec.Command(bin, args...)
	s.cmd.Dir = s.Dir
	logf, err := os.Create(filepath.Join(s.Dir, fmt.Sprintf("redis-%d.log", port)))
	if err != nil {
		return err
	}
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start redis-server: %w", err)
	}
	s.done = make(chan struct{})
	go func() { _ = s.cmd.Wait(); logf.Close(); close(s.done) }()
	return waitPing(s.Addr, s.done)
}

// Stop kills the server (SIGKILL: no persistence to flush) and waits for it to exit. Idempotent.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

// Restart stops the server and starts it again on the same port with an empty dataset, as a crash
// of a Redis without persistence looks to clients. down is how long it stays away.
func (s *Server) Restart(t testing.TB, down time.Duration) {
	t.Helper()
	s.Stop()
	time.Sleep(down)
	if err := s.start(s.cmd.Path, s.Port()); err != nil {
		t.Fatalf("redistest: restart: %v", err)
	}
}

// Do sends one command over a fresh connection and returns the reply's first line, for small
// checks (INFO sections are returned whole). It needs no client library.
func (s *Server) Do(args ...string) (string, error) { return do(s.Addr, args...) }

func lookBin(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("redistest: %s not found (run hack/test-deps.sh): %v", name, err)
	}
	t.Skipf("redistest: %s not found; `make test` installs it", name)
	return ""
}

// freePort asks the kernel for a free loopback port. Another process may take it before
// redis-server binds it; start then fails loudly rather than silently sharing a server.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitPing(addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("redis-server on %s exited at start", addr)
		default:
		}
		r, err := do(addr, "PING")
		if err == nil && r == "+PONG" || err != nil && strings.HasPrefix(err.Error(), "NOAUTH") { // up, with requirepass
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("redis-server on %s not ready after %v", addr, startTimeout)
}

// do speaks just enough RESP for readiness checks: it returns the first reply line, or for a bulk
// string its whole payload.
func do(addr string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if strings.HasPrefix(line, "-") {
		return "", errors.New(line[1:])
	}
	if !strings.HasPrefix(line, "$") {
		return line, nil
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil || n < 0 {
		return "", err
	}
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(r, buf); err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}
