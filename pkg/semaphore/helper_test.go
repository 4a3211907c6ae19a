package semaphore_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/crawlpolite/crawlpolite/pkg/semaphore"
)

// helperConfig is what a helper process is told through SEMAPHORE_CONFIG.
type helperConfig struct {
	Addrs    []string
	Cluster  bool
	Options  semaphore.Options
	Keys     []keySpec
	Workers  int
	Proc     int
	Duration time.Duration
}

// runHelper is the body of a helper process. Modes:
//
//	hammer  take turns on Keys with Workers goroutines for Duration; print one JSON event per turn
//	hold    take a turn on Keys[0], print "held TOKEN", then hold it until killed
//	wait    take a turn on Keys[0], print "granted TOKEN", hold 10ms, release, exit
//	waker   per stdin line: take a turn on Keys[0], print "granted UNIXNANO", release
func runHelper(mode string) int {
	var cfg helperConfig
	if err := json.Unmarshal([]byte(os.Getenv("SEMAPHORE_CONFIG")), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "helper config:", err)
		return 2
	}
	c := newClient(cfg.Addrs, cfg.Cluster)
	defer c.Close()
	s, err := semaphore.NewRedis(c, cfg.Options)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer s.Close()
	ctx := context.Background()
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	println := func(line string) {
		mu.Lock()
		defer mu.Unlock()
		_, _ = out.WriteString(line + "\n")
		_ = out.Flush()
	}
	fail := func(err error) int { fmt.Fprintln(os.Stderr, mode+":", err); return 1 }
	k := cfg.Keys[0]
	switch mode {
	case "hammer":
		ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
		err := hammer(ctx, s, cfg.Keys, cfg.Workers, cfg.Proc, func(e event) {
			b, _ := json.Marshal(e)
			println(string(b))
		})
		if err != nil {
			return fail(err)
		}
		println("done")
	case "hold":
		l, err := s.Acquire(ctx, k.Name, k.Limits)
		if err != nil {
			return fail(err)
		}
		println(fmt.Sprintf("held %d", l.Token()))
		select {}
	case "wait":
		l, err := s.Acquire(ctx, k.Name, k.Limits)
		if err != nil {
			return fail(err)
		}
		println(fmt.Sprintf("granted %d", l.Token()))
		time.Sleep(10 * time.Millisecond)
		if err := l.Release(ctx); err != nil {
			return fail(err)
		}
	case "waker":
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
			l, err := s.Acquire(ctx, k.Name, k.Limits)
			if err != nil {
				return fail(err)
			}
			println(strconv.FormatInt(time.Now().UnixNano(), 10))
			if err := l.Release(ctx); err != nil {
				return fail(err)
			}
		}
	default:
		return fail(fmt.Errorf("unknown mode"))
	}
	return 0
}

// helper is a running helper process.
type helper struct {
	cmd   *exec.Cmd
	lines chan string
	stdin *os.File
	done  chan struct{}
}

func startHelper(t testing.TB, mode string, cfg helperConfig) *helper {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SEMAPHORE_HELPER="+mode, "SEMAPHORE_CONFIG="+string(b))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = r
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	h := &helper{cmd: cmd, lines: make(chan string, 1<<16), stdin: w, done: make(chan struct{})}
	go func() {
		defer close(h.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
	}()
	go func() { _ = cmd.Wait(); close(h.done) }()
	t.Cleanup(h.kill)
	return h
}

// next returns the helper's next output line, failing the test after timeout.
func (h *helper) next(t testing.TB, timeout time.Duration) string {
	t.Helper()
	select {
	case l, ok := <-h.lines:
		if !ok {
			t.Fatalf("helper exited: %v", h.cmd.ProcessState)
		}
		return l
	case <-time.After(timeout):
		t.Fatalf("helper silent for %v", timeout)
	}
	return ""
}

// expect reads the next line and checks its first word.
func (h *helper) expect(t testing.TB, word string, timeout time.Duration) []string {
	t.Helper()
	f := strings.Fields(h.next(t, timeout))
	if len(f) == 0 || f[0] != word {
		t.Fatalf("helper said %q, want %s", f, word)
	}
	return f[1:]
}

// kill sends SIGKILL and waits for the process to be gone.
func (h *helper) kill() {
	_ = h.cmd.Process.Kill()
	<-h.done
	h.stdin.Close()
}

// wait waits for the helper to exit and checks it succeeded.
func (h *helper) wait(t testing.TB, timeout time.Duration) {
	t.Helper()
	select {
	case <-h.done:
	case <-time.After(timeout):
		t.Fatalf("helper still running after %v", timeout)
	}
	if !h.cmd.ProcessState.Success() {
		t.Fatalf("helper failed: %v", h.cmd.ProcessState)
	}
}
