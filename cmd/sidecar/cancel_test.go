package main_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestClientCancel: a crawler that gives up on a request already sent does not free its host's slot
// before the origin is done with it, so the origin never sees more in flight than the limit; one
// that gives up while waiting for its turn never reaches the origin.
func TestClientCancel(t *testing.T) {
	var (
		mu              sync.Mutex
		inFlight, most  int
		paths           []string
		slowEnd, fastAt time.Time
	)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/robots.txt" {
			return
		}
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		paths = append(paths, r.URL.Path)
		if r.URL.Path == "/fast" {
			fastAt = time.Now()
		}
		mu.Unlock()
		if r.URL.Path == "/slow" {
			time.Sleep(600 * time.Millisecond) // works on, whatever the client does
		}
		mu.Lock()
		inFlight--
		if r.URL.Path == "/slow" {
			slowEnd = time.Now()
		}
		mu.Unlock()
		_, _ = io.WriteString(w, strings.Repeat("x", 64<<10))
	}))
	t.Cleanup(origin.Close)
	s := startSidecar(t, nil, "--policy-file="+writeLimitOne(t))
	cl := s.client(t, false)

	// Sent, then abandoned after 100 ms.
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, origin.URL+"/slow", nil)
	if _, err := cl.Do(req); err == nil {
		t.Fatal("the abandoned request succeeded")
	}
	// Waiting behind it, then abandoned: must never reach the origin.
	wctx, wcancel := context.WithTimeout(t.Context(), 150*time.Millisecond)
	defer wcancel()
	req, _ = http.NewRequestWithContext(wctx, http.MethodGet, origin.URL+"/never", nil)
	if _, err := cl.Do(req); err == nil {
		t.Fatal("the request abandoned while waiting succeeded")
	}
	// The next one goes only when the origin has finished /slow.
	resp, err := cl.Get(origin.URL + "/fast")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	mu.Lock()
	defer mu.Unlock()
	if most != 1 {
		t.Errorf("origin saw %d requests in flight, limit 1", most)
	}
	if fastAt.Before(slowEnd) {
		t.Errorf("/fast reached the origin %v before it had finished the abandoned /slow", slowEnd.Sub(fastAt))
	}
	for _, p := range paths {
		if p == "/never" {
			t.Error("a request abandoned while waiting for its turn reached the origin")
		}
	}
}

func writeLimitOne(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(p, []byte("defaults:\n  maxConcurrency: 1\n  minDelay: 0s\n  robots: ignore\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
