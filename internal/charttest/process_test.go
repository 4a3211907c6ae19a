package charttest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// imageUID is the image's USER (distroless nonroot).
const imageUID = 65532

// sharedDir is a directory the image user can read (t.TempDir is the test user's alone), removed
// when the test ends.
func sharedDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp(binDir, "shared-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

// readOnlyDir is an empty directory the image user cannot write to: the working directory of a
// container with readOnlyRootFilesystem.
func readOnlyDir(t testing.TB) string {
	t.Helper()
	d := filepath.Join(sharedDir(t), "ro")
	if err := os.Mkdir(d, 0o555); err != nil {
		t.Fatal(err)
	}
	return d
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// process is a binary started as the image starts it: an empty environment, a read-only working
// directory and, when the test runs as root, the image's unprivileged user.
type process struct {
	cmd    *exec.Cmd
	output *syncBuffer
	exited chan struct{} // closed when the process has exited; err is then its exit error
	err    error
}

// syncBuffer is the process output, written by exec's copier while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func start(t testing.TB, bin string, args ...string) *process {
	t.Helper()
	out := &syncBuffer{}
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{} // not nil: nil would inherit ours
	cmd.Dir = readOnlyDir(t)
	cmd.Stdout, cmd.Stderr = out, out
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: imageUID, Gid: imageUID}}
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	p := &process{cmd: cmd, output: out, exited: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		if err := p.stop(); err != nil {
			t.Logf("%s: %v", filepath.Base(bin), err)
		}
	})
	return p
}

// stop sends SIGTERM and waits for the exit (killing after 30 s); it returns the exit error.
func (p *process) stop() error {
	select {
	case <-p.exited:
		return p.err
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("killed: no exit 30s after SIGTERM")
	}
}

// waitHTTP polls url until it answers 200, failing the test with the process output if the process
// exits or 60 s pass.
func (p *process) waitHTTP(t testing.TB, url string) {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := c.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited (%v) before %s answered 200:\n%s", filepath.Base(p.cmd.Path), p.err, url, p.output)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no 200 from %s within 60s (last error %v):\n%s", filepath.Base(p.cmd.Path), url, err, p.output)
		}
	}
}
