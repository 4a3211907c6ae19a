package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"
)

func run(ctx context.Context, binary string, duration time.Duration, workers int) error {
	shop := newSite("shop", "User-agent: *\nDisallow: /private\n", 4, 0, 40*time.Millisecond)
	news := newSite("news", "User-agent: *\nCrawl-delay: 0.5\n", 2, 500*time.Millisecond, 5*time.Millisecond)
	defer shop.srv.Close()
	defer news.srv.Close()
	dir, err := os.MkdirTemp("", "crawlpolite-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	policy := fmt.Sprintf(`defaults:
  maxConcurrency: 2
  minDelay: 0s
  robots: enforce
rules:
  - hosts: [%q]
    maxConcurrency: 4
`, shop.host())
	if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(policy), 0o644); err != nil {
		return err
	}
	fmt.Printf("policy (%s):\n%s\n", filepath.Join(dir, "policy.yaml"), policy)
	sc, err := startSidecar(binary, "--listen=127.0.0.1:0", "--admin-listen=127.0.0.1:0", "--allow-cidr=127.0.0.1/32",
		"--policy-file="+filepath.Join(dir, "policy.yaml"))
	if err != nil {
		return err
	}
	defer sc.stop()
	fmt.Printf("sidecar: proxy %s, admin %s (in-process semaphore)\n\n", sc.proxy, sc.admin)

	cctx, cancel := context.WithTimeout(ctx, duration)
	defer cancel()
	var refused atomic.Int64
	done := make(chan struct{})
	go func() { crawl(cctx, sc.proxy, []*site{shop, news}, workers, &refused); close(done) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for live := true; live; {
		select {
		case <-done:
			live = false
		case <-tick.C:
			table(sc, shop, news)
		}
	}
	summary(shop, news, refused.Load())
	return nil
}

// crawl has workers fetch pages through the proxy, each site its share of the workers (as a crawler's
// frontier would), one request in ten on a disallowed path.
func crawl(ctx context.Context, proxy string, sites []*site, workers int, refused *atomic.Int64) {
	tr := &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: proxy}), MaxIdleConnsPerHost: workers}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				s := sites[w%len(sites)]
				path := fmt.Sprintf("/page/%d", rand.IntN(1000))
				if i%10 == 9 {
					path = "/private/account"
				}
				req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+s.host()+path, nil)
				req.Header.Set("User-Agent", "demobot/1.0")
				resp, err := c.Do(req)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusForbidden {
					refused.Add(1)
				}
			}
		}()
	}
	wg.Wait()
}

// table prints each site's live state as the sidecar sees it (GET /state on the admin port).
func table(sc *sidecar, sites ...*site) {
	q := url.Values{}
	for _, s := range sites {
		q.Add("host", s.host())
	}
	var state map[string]struct {
		InFlight int    `json:"inFlight"` // at the origin
		Starting int    `json:"starting"` // granted, waiting for the delay gate
		Waiting  int    `json:"waiting"`
		Limit    int    `json:"limit"`
		Delay    string `json:"delay"`
	}
	resp, err := http.Get("http://" + sc.admin + "/state?" + q.Encode())
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if json.NewDecoder(resp.Body).Decode(&state) != nil {
		return
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "%s\tsite\thost\tin flight\tstarting\twaiting\tlimit\tdelay\tpages served\t\n", time.Now().Format("15:04:05"))
	for _, s := range sites {
		st := state[s.host()]
		fmt.Fprintf(w, "\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%d\t\n", s.name, s.host(), st.InFlight, st.Starting, st.Waiting, st.Limit, st.Delay, s.stats().pages)
	}
	_ = w.Flush()
	fmt.Println()
}

func summary(shop, news *site, refused int64) {
	fmt.Println("summary, as the sites observed it:")
	ok := true
	for _, s := range []*site{shop, news} {
		st := s.stats()
		line := fmt.Sprintf("  %-5s %4d pages, at most %d in flight (limit %d)", s.name, st.pages, st.maxSeen, s.limit)
		held := st.maxSeen <= s.limit
		if s.delay > 0 {
			line += fmt.Sprintf(", starts at least %v apart (Crawl-delay %v)", st.minGap.Round(time.Millisecond), s.delay)
			// Starts are decided by the semaphore; the site sees them after the proxy and the network,
			// whose latency varies by some milliseconds from one request to the next.
			held = held && st.minGap >= s.delay-max(10*time.Millisecond, s.delay*3/100)
		}
		ok = ok && held && st.disallowed == 0
		fmt.Printf("%s: %s\n", line, verdict(held))
	}
	d := shop.stats().disallowed + news.stats().disallowed
	fmt.Printf("  /private (disallowed by robots.txt): %d refused with 403, %d reached a site: %s\n", refused, d, verdict(d == 0 && refused > 0))
	if !ok {
		fmt.Println("LIMITS NOT HELD")
		os.Exit(1)
	}
}

func verdict(ok bool) string {
	if ok {
		return "held"
	}
	return "NOT HELD"
}

// sidecar is the running sidecar process.
type sidecar struct {
	cmd          *exec.Cmd
	proxy, admin string
	exited       chan struct{}
}

// startSidecar runs the binary and waits for its "serving" log line, which names its addresses.
func startSidecar(binary string, args ...string) (*sidecar, error) {
	if _, err := os.Stat(binary); err != nil {
		return nil, fmt.Errorf("sidecar binary: %w (run `make demo`, which builds it)", err)
	}
	s := &sidecar{cmd: exec.Command(binary, args...), exited: make(chan struct{})}
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var m struct{ Level, Msg, Listen, Admin string }
			switch {
			case json.Unmarshal(sc.Bytes(), &m) != nil:
				fmt.Fprintln(os.Stderr, sc.Text())
			case m.Msg == "serving":
				s.proxy, s.admin = m.Listen, m.Admin
				close(ready)
			case m.Level == "WARN" || m.Level == "ERROR":
				fmt.Fprintln(os.Stderr, sc.Text())
			}
		}
		_ = s.cmd.Wait()
		close(s.exited)
	}()
	select {
	case <-ready:
		return s, nil
	case <-s.exited:
		return nil, errors.New("the sidecar exited before serving")
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		return nil, errors.New("the sidecar did not start")
	}
}

func (s *sidecar) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
	}
}
