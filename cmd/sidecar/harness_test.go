package main_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the sidecar built once for the package's tests (with -race when the tests have it).
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "crawlpolite-sidecar-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "crawlpolite-sidecar")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the sidecar:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// sidecar is one running sidecar process.
type sidecar struct {
	cmd   *exec.Cmd
	proxy string // host:port
	admin string
	caDir string
	mu    sync.Mutex
	log   strings.Builder
	exit  chan error
}

// startSidecar runs the binary with args (listening on free ports) and waits until it serves.
func startSidecar(t *testing.T, env []string, args ...string) *sidecar {
	t.Helper()
	s := &sidecar{caDir: t.TempDir(), exit: make(chan error, 1)}
	args = append([]string{"--listen=127.0.0.1:0", "--admin-listen=127.0.0.1:0", "--ca-dir=" + s.caDir,
		"--drain-timeout=5s", "--allow-cidr=127.0.0.0/8"}, args...)
	s.cmd = exec.Command(binary, args...)
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
			line := sc.Text()
			s.mu.Lock()
			s.log.WriteString(line + "\n")
			s.mu.Unlock()
			var m struct{ Msg, Listen, Admin string }
			if json.Unmarshal([]byte(line), &m) == nil && m.Msg == "serving" {
				s.proxy, s.admin = m.Listen, m.Admin
				close(ready)
			}
		}
		s.exit <- s.cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("sidecar %d log:\n%s", s.cmd.Process.Pid, s.logs())
		}
	})
	select {
	case <-ready:
	case err := <-s.exit:
		t.Fatalf("sidecar exited before serving: %v\n%s", err, s.logs())
	case <-time.After(30 * time.Second):
		t.Fatalf("sidecar did not start:\n%s", s.logs())
	}
	return s
}

func (s *sidecar) logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// client returns an HTTP client whose every request goes through the sidecar, trusting its CA.
func (s *sidecar) client(t *testing.T, h2 bool) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(s.caDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	u := &url.URL{Scheme: "http", Host: s.proxy}
	tr := &http.Transport{Proxy: http.ProxyURL(u), MaxIdleConnsPerHost: 100, ForceAttemptHTTP2: h2}
	tr.TLSClientConfig = &tls.Config{RootCAs: roots}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

// stop sends sig and waits for the exit, returning its error.
func (s *sidecar) stop(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	_ = s.cmd.Process.Signal(sig)
	select {
	case err := <-s.exit:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("sidecar did not exit on %v", sig)
		return nil
	}
}

// adminGet fetches a URL on the admin port.
func (s *sidecar) adminGet(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + s.admin + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// hostState is one host's entry of the admin /state answer.
type hostState struct {
	InFlight int    `json:"inFlight"`
	Waiting  int    `json:"waiting"`
	Limit    int    `json:"limit"`
	Backoff  string `json:"backoff"`
}

func (s *sidecar) state(t *testing.T, host string) hostState {
	t.Helper()
	code, body := s.adminGet(t, "/state?host="+url.QueryEscape(host))
	var m map[string]hostState
	if code != 200 || json.Unmarshal([]byte(body), &m) != nil {
		t.Fatalf("/state: %d %s", code, body)
	}
	return m[host]
}

// origin is a test site that records what reaches it: requests in flight at most, start times, and
// hits by path.
type origin struct {
	*httptest.Server
	robots string
	hold   time.Duration // each page request takes this long

	mu       sync.Mutex
	inFlight int
	maxSeen  int
	starts   []time.Time
	hits     map[string]int
	by       map[string]int // page requests by X-Worker's sidecar
}

func newOrigin(t *testing.T, robots string, hold time.Duration, tls bool) *origin {
	t.Helper()
	o := &origin{robots: robots, hold: hold, hits: map[string]int{}, by: map[string]int{}}
	h := http.HandlerFunc(o.serve)
	if tls {
		o.Server = httptest.NewUnstartedServer(h)
		o.EnableHTTP2 = true
		o.StartTLS()
	} else {
		o.Server = httptest.NewServer(h)
	}
	t.Cleanup(o.Close)
	return o
}

func (o *origin) serve(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	o.hits[r.URL.Path]++
	if r.URL.Path == "/robots.txt" {
		o.mu.Unlock()
		_, _ = io.WriteString(w, o.robots)
		return
	}
	o.inFlight++
	o.maxSeen = max(o.maxSeen, o.inFlight)
	o.starts = append(o.starts, time.Now())
	o.by[r.Header.Get("X-Sidecar")]++
	if r.URL.Path == "/busy" {
		o.inFlight--
		o.mu.Unlock()
		w.Header().Set("Retry-After", "2")
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	o.mu.Unlock()
	hold := o.hold
	if strings.HasPrefix(r.URL.Path, "/slow") {
		hold = time.Minute
	}
	select {
	case <-time.After(hold):
	case <-r.Context().Done():
	}
	o.mu.Lock()
	o.inFlight--
	o.mu.Unlock()
	_, _ = io.WriteString(w, "page "+r.URL.Path+"\n")
}

func (o *origin) host() string {
	return strings.TrimPrefix(strings.TrimPrefix(o.URL, "http://"), "https://")
}

func (o *origin) snapshot() (maxSeen int, starts []time.Time, hits map[string]int, by map[string]int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.maxSeen, slices.Clone(o.starts), clone(o.hits), clone(o.by)
}

func clone(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// minGap is the smallest gap between consecutive starts.
func minGap(starts []time.Time) time.Duration {
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	gap := time.Duration(1<<63 - 1)
	for i := 1; i < len(starts); i++ {
		gap = min(gap, starts[i].Sub(starts[i-1]))
	}
	return gap
}

// gaps lists the gaps between consecutive starts, rounded to the millisecond, for failure messages.
func gaps(starts []time.Time) []time.Duration {
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	var out []time.Duration
	for i := 1; i < len(starts); i++ {
		out = append(out, starts[i].Sub(starts[i-1]).Round(time.Millisecond))
	}
	return out
}

// crawl runs workers fetching url (with a path per request) through c until ctx ends, tagging each
// request with the sidecar's name. It returns the status codes seen.
func crawl(ctx context.Context, c *http.Client, base, name string, workers int) map[int]int {
	var (
		mu    sync.Mutex
		codes = map[int]int{}
		wg    sync.WaitGroup
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/page/%d/%d", base, w, i), nil)
				req.Header.Set("X-Sidecar", name)
				req.Header.Set("User-Agent", "testbot/1.0")
				resp, err := c.Do(req)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				codes[resp.StatusCode]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return codes
}

// holding is how many page requests are at the origin now.
func (o *origin) holding() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.inFlight
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// reset forgets what was observed so far (not the hits by path).
func (o *origin) reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.maxSeen, o.starts, o.by = 0, nil, map[string]int{}
}

// quit posts /quitquitquit with the token the sidecar wrote into its CA directory.
func (s *sidecar) quit(t *testing.T) {
	t.Helper()
	if code := s.postQuit(t, "Bearer "+s.quitToken(t)); code != http.StatusOK {
		t.Fatalf("quitquitquit with the token: %d", code)
	}
}

func (s *sidecar) quitToken(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.caDir, "quit-token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// postQuit posts /quitquitquit with the Authorization header auth ("" for none) and returns the status.
func (s *sidecar) postQuit(t *testing.T, auth string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+s.admin+"/quitquitquit", nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
