package main_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hostileRSSLimit is the acceptance bound on the sidecar's peak RSS under TestHostileSites, with
// the injected default memory limit of 256Mi.
const hostileRSSLimit = 128 << 20

var (
	plainOnce sync.Once
	plainBin  string
	plainErr  error
)

// plainBinary is the sidecar built without the race detector, whose memory is what a pod sees.
func plainBinary(t *testing.T) string {
	t.Helper()
	plainOnce.Do(func() {
		dir, err := os.MkdirTemp("", "crawlpolite-sidecar-plain")
		if err != nil {
			plainErr = err
			return
		}
		plainBin = filepath.Join(dir, "crawlpolite-sidecar")
		out, err := exec.Command("go", "build", "-o", plainBin, ".").CombinedOutput()
		if err != nil {
			plainErr = fmt.Errorf("%w\n%s", err, out)
		}
	})
	if plainErr != nil {
		t.Fatal(plainErr)
	}
	return plainBin
}

// rawOrigin is a TCP server that reads HTTP requests and answers each with whatever bytes
// respond writes: a hostile origin, free to break the protocol.
func rawOrigin(t *testing.T, respond func(w *bufio.Writer, r *http.Request) bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br, bw := bufio.NewReader(c), bufio.NewWriter(c)
				for {
					r, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, r.Body)
					keep := respond(bw, r)
					if bw.Flush() != nil || !keep {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// endless writes an endless header line (until the reader gives up or limit bytes).
func endless(w *bufio.Writer, limit int) {
	_, _ = w.WriteString("HTTP/1.1 200 OK\r\nX-Endless: ")
	chunk := strings.Repeat("a", 32<<10)
	for n := 0; n < limit; n += len(chunk) {
		if _, err := w.WriteString(chunk); err != nil {
			return
		}
	}
}

func okResponse(w *bufio.Writer, body string) {
	fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

// hostileRobots is a robots.txt near the 500 KiB limit, different per host so no cache can share
// it: wildcard rules, long lines and non-ASCII, the costliest a file can be to hold and to match.
func hostileRobots(host string, size int) string {
	var b strings.Builder
	b.WriteString("User-agent: *\n")
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "Disallow: /*%s-%d-zzzzzzzz*é*q$\nAllow: /%s/%d/ü\n", host, i, host, i)
	}
	return b.String()
}

// TestHostileSites runs many hostile origins at once against the built sidecar (items 1-6, 9-11 of
// issue 10 and more): it keeps its PID, stays under its memory limit with no panic, and an ordinary
// origin is served during and after.
func TestHostileSites(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	// Origins.
	ordinary := newOrigin(t, "User-agent: *\nAllow: /\n", 0, false)
	crash := newOrigin(t, "User-agent: *\nCrawl-delay:\nRequest-rate:\nCrawl-delay: \t\nDisallow: /x\n", 0, false)
	var wild strings.Builder
	wild.WriteString("User-agent: *\n")
	for range 12191 {
		wild.WriteString("Disallow: /*" + strings.Repeat("z", 30) + "q\n")
	}
	cpu := newOrigin(t, wild.String(), 0, false)
	heads := rawOrigin(t, func(w *bufio.Writer, r *http.Request) bool {
		endless(w, 256<<20)
		return false
	})
	robotsHead := rawOrigin(t, func(w *bufio.Writer, r *http.Request) bool {
		if r.URL.Path == "/robots.txt" {
			_, _ = w.WriteString("HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("b", 9<<20) + "\r\n\r\n")
			return false
		}
		okResponse(w, "unreachable")
		return true
	})
	hints := rawOrigin(t, func(w *bufio.Writer, r *http.Request) bool {
		if r.URL.Path == "/robots.txt" {
			okResponse(w, "")
			return true
		}
		if r.URL.Path == "/099" {
			_, _ = w.WriteString("HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n")
			return true
		}
		for range 10000 {
			if _, err := w.WriteString("HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n"); err != nil {
				return false
			}
		}
		okResponse(w, "after hints")
		return true
	})
	var poisoned atomic.Int32
	poison := rawOrigin(t, func(w *bufio.Writer, r *http.Request) bool {
		if r.URL.Path == "/robots.txt" {
			okResponse(w, "")
			return true
		}
		okResponse(w, r.URL.Path)
		_ = w.Flush()
		time.Sleep(200 * time.Millisecond)
		okResponse(w, "/injected") // an extra, unasked-for response
		return true
	})
	bigSite := newOrigin(t, "", 0, false)
	var bigHosts sync.Map // the subdomains whose robots.txt was fetched
	bigSite.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/robots.txt" {
			bigHosts.Store(r.Host, true)
			_, _ = io.WriteString(w, hostileRobots(r.Host, 500<<10))
			return
		}
		_, _ = io.WriteString(w, "page")
	})
	_, bigPort, _ := net.SplitHostPort(bigSite.host())

	dns := startDNS(t, map[string][]netip.Addr{
		"*.big.test":  {netip.MustParseAddr("127.0.0.1")},
		"nat64.test":  {netip.MustParseAddr("64:ff9b::a00:5")},
		"meta.test":   {netip.MustParseAddr("169.254.169.254")},
		"mapped.test": {netip.MustParseAddr("::ffff:10.0.0.5")},
	})

	pol := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(pol, []byte("defaults:\n  maxConcurrency: 4\n  minDelay: 0s\n  waitTimeout: 30s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	saved := binary
	binary = plainBinary(t)
	s := startSidecar(t, nil, "--policy-file="+pol, "--memory-limit=268435456", "--resolver="+dns.addr)
	binary = saved
	pid := s.cmd.Process.Pid
	c := s.client(t, false)
	c.Timeout = 30 * time.Second
	fetch := func(u string) (int, string, error) {
		resp, err := c.Get(u)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, string(b), err
	}

	// Peak RSS, sampled (VmHWM is the kernel's own high-water mark; sampling VmRSS too catches a
	// kernel without it).
	var peak atomic.Int64
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			peak.Store(max(peak.Load(), rss(pid, "VmHWM"), rss(pid, "VmRSS")))
			time.Sleep(20 * time.Millisecond)
		}
	}()

	type probe struct {
		name string
		url  string
		want func(code int, body string) bool
	}
	refused := func(code int, _ string) bool { return code >= 400 }
	probes := []probe{
		{"empty Crawl-delay", crash.URL + "/page", func(code int, _ string) bool { return code == 200 }},
		{"empty Crawl-delay, disallowed", crash.URL + "/x", func(code int, _ string) bool { return code == 403 }},
		{"wildcard CPU", cpu.URL + "/" + strings.Repeat("z", 60<<10), refused},
		{"endless head", "http://" + heads + "/page", func(code int, _ string) bool { return code == 502 }},
		{"9 MiB robots head", "http://" + robotsHead + "/page", refused},
		{"1xx flood", "http://" + hints + "/page", func(code int, _ string) bool { return code == 502 }},
		{"status 099", "http://" + hints + "/099", func(code int, _ string) bool { return code == 502 }},
		{"IPv4-mapped literal", "http://[::ffff:127.0.0.1]:" + strings.Split(ordinary.host(), ":")[1] + "/mapped",
			func(code int, body string) bool { return code == 200 && body == "page /mapped\n" }},
		{"NAT64 answer", "http://nat64.test/", refused},
		{"metadata answer", "http://meta.test/", refused},
		{"mapped answer", "http://mapped.test/", refused},
		{"own admin port", "http://" + s.admin + "/state?host=a", refused},
		{"own proxy port", "http://" + s.proxy + "/", refused},
	}
	var failures sync.Map
	for _, p := range probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				code, body, err := fetch(p.url)
				if err == nil && !p.want(code, body) {
					failures.Store(p.name, fmt.Sprintf("%d %.80q", code, body))
				}
				if err != nil && ctx.Err() == nil {
					failures.Store(p.name, err.Error())
				}
			}
		}()
	}
	// The pool: every answer must be the one asked for, once the extra response is out (a response
	// the origin sends while the next request is on its way cannot be told from the answer: that is
	// HTTP/1.1, and the pool is per origin, so a site can only mix up its own answers).
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			time.Sleep(300 * time.Millisecond)
			path := "/p" + strconv.Itoa(i)
			if code, body, err := fetch("http://" + poison + path); err == nil && code == 200 && body != path {
				poisoned.Add(1)
				failures.Store("pool", fmt.Sprintf("asked %s, got %q", path, body))
			}
		}
	}()
	// Thirty subdomains of one site, each with its own near-limit robots.txt.
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ctx.Err() == nil; i += 3 {
				_, _, _ = fetch(fmt.Sprintf("http://s%d.big.test:%s/page", i%30, bigPort))
			}
		}()
	}
	// The ordinary origin, all along.
	deadline := time.Now().Add(12 * time.Second)
	served, failed := 0, 0
	for time.Now().Before(deadline) {
		code, body, err := fetch(ordinary.URL + "/ordinary")
		if err != nil || code != 200 || body != "page /ordinary\n" {
			if failed++; failed == 1 {
				t.Errorf("ordinary request during the attack: %d %q %v", code, body, err)
			}
		} else {
			served++
		}
		time.Sleep(100 * time.Millisecond)
	}
	if failed > 0 {
		t.Errorf("%d of %d ordinary requests failed during the attack", failed, failed+served)
	}
	stop()
	wg.Wait()

	if code, body, err := fetch(ordinary.URL + "/after"); err != nil || code != 200 || body != "page /after\n" {
		t.Errorf("ordinary request after the attack: %d %q %v", code, body, err)
	}
	n := 0
	bigHosts.Range(func(any, any) bool { n++; return true })
	if n < 30 {
		t.Errorf("only %d of the 30 subdomains' robots.txt were fetched: the memory attack did not run", n)
	}
	failures.Range(func(k, v any) bool {
		t.Errorf("%s: %s", k, v)
		return true
	})
	select {
	case err := <-s.exit:
		t.Fatalf("sidecar exited during the attack: %v", err)
	default:
	}
	if s.cmd.Process.Pid != pid {
		t.Fatal("sidecar PID changed")
	}
	_, metrics := s.adminGet(t, "/metrics")
	for _, line := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(line, "crawlpolite_panics_total") && !strings.HasSuffix(line, " 0") {
			t.Errorf("panics recovered: %s", line)
		}
	}
	if strings.Contains(s.logs(), "panic") {
		t.Errorf("panic in the sidecar's log")
	}
	t.Logf("peak RSS %.1f MiB under hostile sites (limit %d MiB); %d ordinary requests served", float64(peak.Load())/(1<<20), hostileRSSLimit>>20, served)
	if peak.Load() > hostileRSSLimit {
		t.Errorf("peak RSS %.1f MiB, want at most %d MiB", float64(peak.Load())/(1<<20), hostileRSSLimit>>20)
	}
}

// rss reads a VmXXX line of /proc/pid/status, in bytes.
func rss(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
