package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// site is a local web site that records what a polite crawler must respect: requests in flight at
// once, the gap between starts, and whether disallowed paths were requested.
type site struct {
	name, robots string
	limit        int           // the policy's concurrency for it
	delay        time.Duration // its Crawl-delay (0: none)
	hold         time.Duration // how long a page takes
	srv          *httptest.Server

	mu         sync.Mutex
	inFlight   int
	maxSeen    int
	last       time.Time
	minGap     time.Duration
	pages      int
	disallowed int // requests that reached a disallowed path: must stay 0
}

func newSite(name, robots string, limit int, delay, hold time.Duration) *site {
	s := &site{name: name, robots: robots, limit: limit, delay: delay, hold: hold, minGap: time.Hour}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

func (s *site) host() string { return strings.TrimPrefix(s.srv.URL, "http://") }

func (s *site) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/robots.txt" {
		_, _ = io.WriteString(w, s.robots)
		return
	}
	now := time.Now()
	s.mu.Lock()
	if strings.HasPrefix(r.URL.Path, "/private") {
		s.disallowed++
	}
	if !s.last.IsZero() {
		s.minGap = min(s.minGap, now.Sub(s.last))
	}
	s.last = now
	s.inFlight++
	s.maxSeen = max(s.maxSeen, s.inFlight)
	s.pages++
	s.mu.Unlock()
	time.Sleep(s.hold)
	s.mu.Lock()
	s.inFlight--
	s.mu.Unlock()
	_, _ = io.WriteString(w, "<html>a page</html>\n")
}

type siteStats struct {
	inFlight, maxSeen, pages, disallowed int
	minGap                               time.Duration
}

func (s *site) stats() siteStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return siteStats{s.inFlight, s.maxSeen, s.pages, s.disallowed, s.minGap}
}
