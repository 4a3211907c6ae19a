package main_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/crawlpolite/crawlpolite/internal/rxstamp"
)

// site is an origin that sees as a site does: every request it gets, robots.txt included, with the
// instant it arrived (by the kernel's receive timestamp, see rxstamp_test.go), and how many were in
// flight at once.
type site struct {
	*httptest.Server
	robots     string
	robotsHold time.Duration // each robots.txt request takes this long
	hold       time.Duration // each other request takes this long

	mu       sync.Mutex
	inFlight int
	maxSeen  int
	arrivals []arrival
	stamped  int // arrivals timed by the kernel
}

type arrival struct {
	at   time.Time
	path string
}

func newSite(t *testing.T, robots string, robotsHold, hold time.Duration) *site {
	t.Helper()
	s := &site{robots: robots, robotsHold: robotsHold, hold: hold}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.Listener = rxstamp.Listener(s.Listener)
	s.Config.ConnContext = rxstamp.ConnContext
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func (s *site) serve(w http.ResponseWriter, r *http.Request) {
	now, kernel := rxstamp.ArrivedAt(r)
	s.mu.Lock()
	if kernel {
		s.stamped++
	}
	s.inFlight++
	s.maxSeen = max(s.maxSeen, s.inFlight)
	s.arrivals = append(s.arrivals, arrival{now, r.URL.Path})
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inFlight--
		s.mu.Unlock()
	}()
	hold := s.hold
	if r.URL.Path == "/robots.txt" {
		hold = s.robotsHold
	}
	select {
	case <-time.After(hold):
	case <-r.Context().Done():
	}
	if r.URL.Path == "/robots.txt" {
		_, _ = io.WriteString(w, s.robots)
		return
	}
	_, _ = io.WriteString(w, "page\n")
}

// kernelTimed is how many arrivals the kernel timed.
func (s *site) kernelTimed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stamped
}

// seen returns the arrivals in order and the most requests in flight at once.
func (s *site) seen() ([]arrival, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := slices.Clone(s.arrivals)
	slices.SortFunc(a, func(x, y arrival) int { return x.at.Compare(y.at) })
	return a, s.maxSeen
}

func (s *site) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxSeen, s.arrivals, s.stamped = 0, nil, 0
}

// shortGaps lists the gaps between consecutive arrivals shorter than want(the later arrival), as
// "path: gap", and the smallest gap.
func shortGaps(a []arrival, want func(arrival) time.Duration) (short []string, smallest time.Duration) {
	smallest = time.Duration(1<<63 - 1)
	for i := 1; i < len(a); i++ {
		g := a[i].at.Sub(a[i-1].at)
		smallest = min(smallest, g)
		if g < want(a[i]) {
			short = append(short, fmt.Sprintf("%s after %s: %v", a[i].path, a[i-1].path, g.Round(100*time.Microsecond)))
		}
	}
	return short, smallest
}

// writeSitePolicy writes a policy of one request in flight per host at least delay apart, robots.txt
// enforced, for a crawl that waits for its turns as long as it takes.
func writeSitePolicy(t *testing.T, delay time.Duration) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "policy.yaml")
	doc := fmt.Sprintf("defaults:\n  maxConcurrency: 1\n  minDelay: %dms\n  waitTimeout: 120s\n", delay.Milliseconds())
	if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
