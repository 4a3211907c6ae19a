// Command crawler is the app container of the end-to-end suite's crawler pods: it fetches URLs
// through the proxy its environment names, as a crawler in a labelled pod would, and prints one
// JSON line per request. It reads HTTP_PROXY and HTTPS_PROXY itself: Go's ProxyFromEnvironment
// never proxies loopback addresses, and the suite's origins listen on 127.0.1.x.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

type result struct {
	URL         string  `json:"url"`
	Status      int     `json:"status"`
	Start       int64   `json:"start"` // Unix nanoseconds, when the request was sent
	Seconds     float64 `json:"seconds"`
	ProxyStatus string  `json:"proxyStatus,omitempty"`
	Error       string  `json:"error,omitempty"`
}

func main() {
	urls := flag.String("urls", "", "comma-separated URLs, fetched in turn by each host's workers")
	workers := flag.Int("workers", 2, "concurrent fetchers per host (a crawler's per-host queue)")
	duration := flag.Duration("duration", 5*time.Second, "how long to crawl")
	quit := flag.String("quit", "", "admin address whose /quitquitquit is called at the end (legacy sidecars), with the token from $SSL_CERT_FILE's directory")
	pause := flag.Duration("retry-pause", 0, "how long a worker waits after a 5xx answer or an error before its next request (a crawler's backoff; 0: none)")
	flag.Parse()
	if err := run(strings.Split(*urls, ","), *workers, *duration, *quit, *pause); err != nil {
		fmt.Fprintln(os.Stderr, "crawler:", err)
		os.Exit(1)
	}
}

func proxyFor(r *http.Request) (*url.URL, error) {
	v := os.Getenv("HTTP_PROXY")
	if r.URL.Scheme == "https" {
		v = os.Getenv("HTTPS_PROXY")
	}
	if v == "" {
		return nil, nil
	}
	return url.Parse(v)
}

func run(urls []string, workers int, duration time.Duration, quit string, pause time.Duration) error {
	client := &http.Client{
		Transport: &http.Transport{Proxy: proxyFor, MaxIdleConnsPerHost: 64, ForceAttemptHTTP2: true},
		Timeout:   90 * time.Second,
		// A crawler follows redirects; the sidecar throttles every hop.
	}
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var mu sync.Mutex
	enc := json.NewEncoder(os.Stdout)
	byHost := map[string][]string{}
	for _, u := range urls {
		p, err := url.Parse(u)
		if err != nil {
			return err
		}
		byHost[p.Host] = append(byHost[p.Host], u)
	}
	var wg sync.WaitGroup
	for _, list := range byHost {
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; ctx.Err() == nil; i++ {
					res := fetch(ctx, client, list[i%len(list)])
					if res == nil {
						return
					}
					mu.Lock()
					_ = enc.Encode(res)
					mu.Unlock()
					if pause > 0 && (res.Status >= 500 || res.Error != "") {
						select {
						case <-time.After(pause):
						case <-ctx.Done():
						}
					}
				}
			}()
		}
	}
	wg.Wait()
	if quit != "" {
		token, err := os.ReadFile(filepath.Join(filepath.Dir(os.Getenv("SSL_CERT_FILE")), "quit-token"))
		if err != nil {
			return err
		}
		req, _ := http.NewRequest(http.MethodPost, "http://"+quit+"/quitquitquit", nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("quitquitquit: %s", resp.Status)
		}
	}
	return nil
}

// fetch returns nil when the crawl's time ran out while it waited.
func fetch(ctx context.Context, client *http.Client, u string) *result {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return &result{URL: u, Error: err.Error()}
	}
	resp, err := client.Do(req)
	res := &result{URL: u, Start: start.UnixNano()}
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		res.Error = err.Error()
		res.Seconds = time.Since(start).Seconds()
		return res
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	res.Status, res.ProxyStatus, res.Seconds = resp.StatusCode, resp.Header.Get("Proxy-Status"), time.Since(start).Seconds()
	return res
}
