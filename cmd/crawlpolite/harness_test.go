package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The sidecar and the CLI, built once for the package's tests.
var sidecarBin, cliBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "crawlpolite-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sidecarBin, cliBin = filepath.Join(dir, "crawlpolite-sidecar"), filepath.Join(dir, "crawlpolite")
	for _, b := range [][2]string{{sidecarBin, "../sidecar"}, {cliBin, "."}} {
		cmd := exec.Command("go", "build", "-o", b[0], b[1])
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building", b[1], err)
			os.Exit(1)
		}
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// sidecar is a running sidecar process (as cmd/sidecar's harness_test.go starts them).
type sidecar struct {
	cmd   *exec.Cmd
	proxy string
	admin string
	mu    sync.Mutex
	log   strings.Builder
}

func startSidecar(t *testing.T, env []string, args ...string) *sidecar {
	t.Helper()
	s := &sidecar{}
	args = append([]string{"--listen=127.0.0.1:0", "--admin-listen=127.0.0.1:0", "--drain-timeout=2s", "--allow-cidr=127.0.0.0/8"}, args...)
	s.cmd = exec.Command(sidecarBin, args...)
	s.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			s.mu.Lock()
			s.log.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
			var m struct{ Msg, Listen, Admin string }
			if json.Unmarshal(sc.Bytes(), &m) == nil && m.Msg == "serving" {
				s.proxy, s.admin = m.Listen, m.Admin
				close(ready)
			}
		}
	}()
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		if t.Failed() {
			s.mu.Lock()
			t.Logf("sidecar %d log:\n%s", s.cmd.Process.Pid, s.log.String())
			s.mu.Unlock()
		}
	})
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("sidecar did not start")
	}
	return s
}

func (s *sidecar) client() *http.Client {
	u, _ := url.Parse("http://" + s.proxy)
	return &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(u), MaxIdleConnsPerHost: 64}}
}

// origin is a test site that records its requests in flight over time.
type origin struct {
	*httptest.Server
	robots     string
	robotsCode int
	hold       time.Duration

	mu       sync.Mutex
	gate     chan struct{} // when set, requests are held until it closes, not for hold
	inFlight int
	maxSeen  int
	history  []sample // inFlight after each change
}

type sample struct {
	at time.Time
	n  int
}

func newOrigin(t *testing.T, robots string, robotsCode int, hold time.Duration) *origin {
	t.Helper()
	o := &origin{robots: robots, robotsCode: robotsCode, hold: hold}
	o.Server = httptest.NewServer(http.HandlerFunc(o.serve))
	t.Cleanup(o.Close)
	return o
}

func (o *origin) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/robots.txt":
		if o.robotsCode != 0 {
			w.WriteHeader(o.robotsCode)
		}
		_, _ = io.WriteString(w, o.robots)
		return
	case "/busy":
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	o.mu.Lock()
	gate := o.gate
	o.mu.Unlock()
	var held <-chan time.Time
	if gate == nil {
		held = time.After(o.hold)
	}
	o.change(+1)
	select {
	case <-held:
	case <-gate:
	case <-r.Context().Done():
	}
	o.change(-1)
	_, _ = io.WriteString(w, "page\n")
}

// holdAll holds every request from now on until the next release (or its client goes away).
func (o *origin) holdAll() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.gate = make(chan struct{})
}

// release answers the requests held so far; the next ones are held again.
func (o *origin) release() {
	o.mu.Lock()
	defer o.mu.Unlock()
	close(o.gate)
	o.gate = make(chan struct{})
}

func (o *origin) change(d int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.inFlight += d
	o.maxSeen = max(o.maxSeen, o.inFlight)
	o.history = append(o.history, sample{time.Now(), o.inFlight})
}

// seen is every in-flight count the origin had at some instant of [from, to].
func (o *origin) seen(from, to time.Time) map[int]bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[int]bool{}
	last := 0
	for _, s := range o.history {
		if s.at.Before(from) {
			last = s.n
			continue
		}
		if s.at.After(to) {
			break
		}
		out[s.n] = true
	}
	out[last] = true
	return out
}

func (o *origin) maxInFlight() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.maxSeen
}

func (o *origin) host() string { return strings.TrimPrefix(o.URL, "http://") }

// crawl sends requests to base through c from workers goroutines until ctx ends.
func crawl(ctx context.Context, c *http.Client, base string, workers int) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/page/%d/%d", base, w, i), nil)
				req.Header.Set("User-Agent", "testbot/1.0")
				if resp, err := c.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		})
	}
	return &wg
}

// get sends one request through c and returns its status.
func get(t *testing.T, c *http.Client, u string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("User-Agent", "testbot/1.0")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// cli runs the CLI with args and returns its stdout; a non-zero exit fails the test.
func cli(t *testing.T, env []string, args ...string) string {
	t.Helper()
	out, stderr, err := cliRun(env, args...)
	if err != nil {
		t.Fatalf("crawlpolite %v: %v\n%s", args, err, stderr)
	}
	return out
}

// cliRun runs the CLI with args and returns its stdout, stderr and exit error.
func cliRun(env []string, args ...string) (string, string, error) {
	cmd := exec.Command(cliBin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	return string(out), stderr.String(), err
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// runWithPath runs bin with PATH set to dir and the usual PATH after it.
func runWithPath(bin, dir string, args ...string) (string, string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + dir + ":" + os.Getenv("PATH")}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}
