package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crawlpolite/crawlpolite/internal/redistest"
)

const (
	limitA   = 3
	holdA    = 400 * time.Millisecond
	robotsA  = "User-agent: *\nDisallow: /private\n"
	robotsB  = "User-agent: *\nCrawl-delay: 0.2\n"
	interval = 300 * time.Millisecond
)

// loaded is three sidecars sharing one redis-server, crawling two origins: A (limit 3, each request
// held 400 ms) by workersA workers on each sidecar (4: saturated, 12 workers), and B paced by its
// robots.txt Crawl-delay of 0.2 s (limit 2).
type loaded struct {
	redis string
	a, b  *origin
	cars  []*sidecar
	stop  func()
}

func startLoad(t *testing.T, workersA int) *loaded {
	t.Helper()
	rs := redistest.Start(t)
	l := &loaded{redis: "redis://" + rs.Addr, a: newOrigin(t, robotsA, 0, holdA), b: newOrigin(t, robotsB, 0, time.Millisecond)}
	pol := writeFile(t, "policy.yaml", fmt.Sprintf("defaults:\n  maxConcurrency: 2\n  minDelay: 0s\n  waitTimeout: 60s\n"+
		"rules:\n  - hosts: [%q]\n    maxConcurrency: %d\n", l.a.host(), limitA))
	ctx, cancel := context.WithCancel(t.Context())
	var wgs []*sync.WaitGroup
	for range 3 {
		s := startSidecar(t, nil, "--redis="+l.redis, "--policy-file="+pol)
		l.cars = append(l.cars, s)
		wgs = append(wgs, crawl(ctx, s.client(), l.a.URL, workersA), crawl(ctx, s.client(), l.b.URL, 2))
	}
	l.stop = func() {
		cancel()
		for _, wg := range wgs {
			wg.Wait()
		}
	}
	t.Cleanup(l.stop)
	time.Sleep(2 * time.Second) // robots.txt fetched, queues formed, two load reports published
	return l
}

// phasesA is how many workers crawl A in turn, each phase phaseA long: 5 saturate its limit of 3.
// A holds every request until its phase ends; then the next phase's workers are set and A answers
// all it held, so its in flight changes only when a phase begins, and stays at min(workers, 3)
// through the phase.
var phasesA = []int{5, 1, 5, 2, 5, 1}

const (
	phaseA = 1600 * time.Millisecond
	margin = 250 * time.Millisecond // a refresh's own time and tmux drawing it, on a loaded 2-core CI machine; phases are 1.6 s
)

// workers crawls base, one worker per goroutine spread over cars, each stoppable on its own.
type workers struct {
	t     *testing.T
	cars  []*sidecar
	base  string
	stops []func()
}

// set starts or stops workers (the newest first) until n run.
func (w *workers) set(n int) {
	for len(w.stops) < n {
		ctx, cancel := context.WithCancel(w.t.Context())
		wg := crawl(ctx, w.cars[len(w.stops)%len(w.cars)].client(), w.base, 1)
		w.stops = append(w.stops, func() { cancel(); wg.Wait() })
	}
	for len(w.stops) > n {
		w.stops[len(w.stops)-1]()
		w.stops = w.stops[:len(w.stops)-1]
	}
}

// TestTopInTerminal runs `crawlpolite top` in a real terminal (tmux) against three sidecars on one
// redis-server, with A's load changing by phases (saturated at its limit of 3, then 1 in flight,
// then 2, ...): the in flight it shows for A is never above the limit, reaches it, and equals what
// the origin had in flight at some instant of the last refresh interval (plus a margin) before the
// capture. As the origin's count holds through a phase, that window mostly holds one value, and
// the values shown must follow the phases (1, 2 and 3 all shown).
func TestTopInTerminal(t *testing.T) {
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Skip("tmux not installed")
	}
	l := startLoad(t, 0)
	l.a.holdAll()
	w := &workers{t: t, cars: l.cars, base: l.a.URL}
	t.Cleanup(func() { w.set(0); l.a.release() })
	sock := fmt.Sprintf("crawlpolite-test-%d", time.Now().UnixNano())
	tm := func(args ...string) string {
		out, err := exec.Command(tmux, append([]string{"-L", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	tm("new-session", "-d", "-s", "top", "-x", "160", "-y", "30",
		fmt.Sprintf("%s top --redis %s --interval %s -n 10", cliBin, l.redis, interval))
	t.Cleanup(func() { _ = exec.Command(tmux, "-L", sock, "kill-server").Run() })
	w.set(phasesA[0])
	time.Sleep(1500 * time.Millisecond) // A in a load report: top lists the hosts the reports name
	atLimit, single, shownValues, last, i := 0, 0, map[int]bool{}, "", 0
	for p, n := range phasesA {
		if p > 0 {
			w.set(n)
			l.a.release()
		}
		for end := time.Now().Add(phaseA); time.Now().Before(end); i++ {
			time.Sleep(interval + margin)
			before := time.Now()
			screen := tm("capture-pane", "-p", "-t", "top")
			var row []string
			for _, line := range strings.Split(screen, "\n") {
				if f := strings.Fields(line); len(f) > 0 && f[0] == l.a.host() {
					row = f
				}
			}
			if len(row) < 4 || !strings.Contains(screen, "sidecars 3") {
				t.Fatalf("capture %d (%d workers): no row for %s, or not 3 sidecars:\n%s", i, n, l.a.host(), screen)
			}
			var shown, limit int
			if _, err := fmt.Sscanf(row[1], "%d/%d", &shown, &limit); err != nil || limit != limitA {
				t.Fatalf("capture %d: IN FLIGHT %q, want n/%d:\n%s", i, row[1], limitA, screen)
			}
			if shown > limitA {
				t.Errorf("capture %d: %d in flight shown, above the limit %d", i, shown, limitA)
			}
			seen := l.a.seen(before.Add(-interval-margin), before)
			if !seen[shown] {
				t.Errorf("capture %d (%d workers): top shows %d in flight; the origin had %v during the refresh interval before", i, n, shown, seen)
			}
			if len(seen) == 1 {
				single++
			}
			shownValues[shown] = true
			if shown == limitA {
				atLimit++
			}
			last = screen
		}
	}
	t.Logf("%d captures, %d with one in-flight count at the origin over the interval before; shown %v", i, single, shownValues)
	if atLimit == 0 {
		t.Errorf("the saturated host was never shown at its limit")
	}
	if single < i/2 {
		t.Errorf("only %d of %d captures had one in-flight count at the origin over the interval before: the phases did not hold", single, i)
	}
	if len(shownValues) < 3 {
		t.Errorf("top showed A's in flight as %v over phases of %v workers, want 1, 2 and 3", shownValues, phasesA)
	}
	if max := l.a.maxInFlight(); max > limitA {
		t.Errorf("the origin saw %d in flight, limit %d", max, limitA)
	}
	t.Logf("last capture:\n%s", last)
}

type topJSON struct {
	At    time.Time `json:"at"`
	Hosts []struct {
		Host         string  `json:"host"`
		InFlight     int     `json:"inFlight"`
		Starting     int     `json:"starting"`
		Waiting      int     `json:"waiting"`
		Limit        int     `json:"limit"`
		Delay        string  `json:"delay"`
		DelaySource  string  `json:"delaySource"`
		NextStartIn  string  `json:"nextStartIn"`
		BackoffUntil *string `json:"backoffUntil"`
		Robots       string  `json:"robots"`
	} `json:"hosts"`
}

// TestTopOnceJSON checks the values of `top --once -o json` under the same load: the saturated
// host first, at most its limit in flight and what the origin had then, a queue (12 workers for 3
// slots), policy as the delay's source, robots.txt ok; the Crawl-delay host's delay of 200ms from
// robots, at most 2 granted; no backoff; the time is the server's.
func TestTopOnceJSON(t *testing.T) {
	l := startLoad(t, 4)
	for i := range 5 {
		before := time.Now()
		out := cli(t, nil, "top", "--once", "-o", "json", "--redis", l.redis)
		after := time.Now()
		var got topJSON
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("top -o json: %v\n%s", err, out)
		}
		if len(got.Hosts) != 2 || got.Hosts[0].Host != l.a.host() || got.Hosts[1].Host != l.b.host() {
			t.Fatalf("run %d: want %s then %s:\n%s", i, l.a.host(), l.b.host(), out)
		}
		a, b := got.Hosts[0], got.Hosts[1]
		if seen := l.a.seen(before, after); a.InFlight > limitA || !seen[a.InFlight] {
			t.Errorf("run %d: A inFlight %d; the origin had %v while top ran", i, a.InFlight, seen)
		}
		if a.Limit != limitA || a.Waiting < 3 || a.DelaySource != "policy" || a.Robots != "ok" || a.BackoffUntil != nil ||
			a.Delay != "0s" || a.InFlight+a.Starting > limitA {
			t.Errorf("run %d: A %+v", i, a)
		}
		if b.Limit != 2 || b.Delay != "200ms" || b.DelaySource != "robots" || b.Robots != "ok" || b.InFlight+b.Starting > 2 || b.BackoffUntil != nil {
			t.Errorf("run %d: B %+v", i, b)
		}
		if d := got.At.Sub(before); d < -time.Second || got.At.After(after.Add(time.Second)) {
			t.Errorf("run %d: at %v, not within the run", i, got.At)
		}
		if i == 0 {
			t.Logf("top --once -o json:\n%s", out)
		}
		time.Sleep(150 * time.Millisecond)
	}
}
