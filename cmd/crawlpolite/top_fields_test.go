package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crawlpolite/crawlpolite/internal/redistest"
)

// fieldsLoad is one sidecar on one redis-server with a host of each kind top tells apart: paced
// by a policy minDelay (limit 1, each request held longer than the delay, so no grant waits for
// its start and the next start is at most one delay away), backing off after a 429 with
// Retry-After, grouped by domain (two names of one origin), and idle (one request before the
// load, so listed as active but in no load report).
type fieldsLoad struct {
	redis                                string
	paced, busy, blog, idle              *origin
	pacedKey, busyKey, idleKey, groupKey string
	busySent, busyAnswered               time.Time // around the 429
}

const (
	pacedDelay = 800 * time.Millisecond
	pacedHold  = 1200 * time.Millisecond
	groupLimit = 2
	retryAfter = 30 * time.Second // the harness's /busy answers 429 with Retry-After: 30
)

func startFieldsLoad(t *testing.T) *fieldsLoad {
	t.Helper()
	rs := redistest.Start(t)
	loop := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	dns := startDNS(t, map[string][]netip.Addr{"*.blog.test": loop})
	l := &fieldsLoad{redis: "redis://" + rs.Addr, paced: newOrigin(t, "User-agent: *\nAllow: /\n", 0, pacedHold),
		busy: newOrigin(t, "User-agent: *\nAllow: /\n", 0, 0), blog: newOrigin(t, "User-agent: *\nAllow: /\n", 0, holdA),
		idle: newOrigin(t, "User-agent: *\nAllow: /\n", 0, 0)}
	l.pacedKey, l.busyKey, l.idleKey = l.paced.host(), l.busy.host(), l.idle.host()
	l.groupKey = "domain:blog.test" // policy.GroupKey: the registrable domain, no port
	pol := writeFile(t, "policy.yaml", fmt.Sprintf("defaults:\n  maxConcurrency: 2\n  minDelay: 0s\n  waitTimeout: 60s\n"+
		"rules:\n  - hosts: [%q]\n    maxConcurrency: 1\n    minDelay: %s\n  - hosts: [\"*.blog.test\"]\n    groupBy: domain\n    maxConcurrency: %d\n",
		l.pacedKey, pacedDelay, groupLimit))
	s := startSidecar(t, nil, "--redis="+l.redis, "--policy-file="+pol, "--resolver="+dns)
	c := s.client()
	if code := get(t, c, l.idle.URL+"/page"); code != http.StatusOK {
		t.Fatalf("idle host: %d", code)
	}
	l.busySent = time.Now()
	if code := get(t, c, l.busy.URL+"/busy"); code != http.StatusTooManyRequests {
		t.Fatalf("/busy through the sidecar: %d, want 429", code)
	}
	l.busyAnswered = time.Now()
	port := strings.TrimPrefix(l.blog.host(), "127.0.0.1:")
	// t.Context() ends before the cleanups run: the workers stop, then are waited for.
	for _, wg := range []*sync.WaitGroup{
		crawl(t.Context(), c, l.paced.URL, 2),
		crawl(t.Context(), c, l.busy.URL, 1), // waits out the backoff
		crawl(t.Context(), c, "http://a.blog.test:"+port, 2),
		crawl(t.Context(), c, "http://b.blog.test:"+port, 2), // one budget of 2 for 4 workers
	} {
		t.Cleanup(wg.Wait)
	}
	time.Sleep(2500 * time.Millisecond) // robots.txt fetched, queues formed, two load reports published
	return l
}

func topOnce(t *testing.T, redisURL string, args ...string) topJSON {
	t.Helper()
	out := cli(t, nil, append([]string{"top", "--once", "-o", "json", "--redis", redisURL}, args...)...)
	var got topJSON
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("top -o json %v: %v\n%s", args, err, out)
	}
	return got
}

func topHosts(got topJSON) []string {
	var hs []string
	for _, h := range got.Hosts {
		hs = append(hs, h.Host)
	}
	return hs
}

// TestTopFields checks the fields of `top --once -o json` that need a real history: nextStartIn
// of a host paced by its policy's minDelay (between 0 and the delay while its one request is in
// flight, and not always 0), a
// backoffUntil on the Redis clock after the origin's 429 with Retry-After: 30 (delaySource
// backoff), and a domain group shown under its group key with the group's in flight, never under
// its hosts' names.
func TestTopFields(t *testing.T) {
	l := startFieldsLoad(t)
	pacedNext := map[time.Duration]bool{}
	for i := range 6 {
		before := time.Now()
		got := topOnce(t, l.redis)
		after := time.Now()
		if hs := topHosts(got); len(hs) != 3 || !slices.Contains(hs, l.pacedKey) || !slices.Contains(hs, l.busyKey) || !slices.Contains(hs, l.groupKey) {
			t.Fatalf("run %d: hosts %v, want %s, %s and %s", i, hs, l.pacedKey, l.busyKey, l.groupKey)
		}
		for _, h := range got.Hosts {
			switch h.Host {
			case l.pacedKey:
				next, err := time.ParseDuration(h.NextStartIn)
				if err != nil || next < 0 || next > pacedDelay || h.Delay != pacedDelay.String() || h.DelaySource != "policy" || h.BackoffUntil != nil ||
					h.InFlight > 1 || h.Starting != 0 {
					t.Errorf("run %d: paced host %+v: nextStartIn not within [0, %s] (%v), or not the policy's delay", i, h, pacedDelay, err)
				}
				pacedNext[next] = true
			case l.busyKey:
				if h.BackoffUntil == nil || h.DelaySource != "backoff" {
					t.Errorf("run %d: host after a 429: %+v, want backoffUntil and delaySource backoff", i, h)
					continue
				}
				// Retry-After counts from the 429: its end is 30 s after the sidecar had the answer
				// (Redis and the test share this machine's clock; the script rounds to ms).
				until, err := time.Parse(time.RFC3339Nano, *h.BackoffUntil)
				if from, to := l.busySent.Add(retryAfter-5*time.Millisecond), l.busyAnswered.Add(retryAfter+5*time.Millisecond); err != nil ||
					until.Before(from) || until.After(to) {
					t.Errorf("run %d: backoffUntil %s (%v), want between %s and %s", i, *h.BackoffUntil, err,
						from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano))
				}
				if d, err := time.ParseDuration(h.Delay); err != nil || d != until.Sub(got.At) {
					t.Errorf("run %d: host after a 429: delay %q, want the backoff left at %s, %s", i, h.Delay, got.At, until.Sub(got.At))
				}
			case l.groupKey:
				if seen := l.blog.seen(before, after); h.InFlight > groupLimit || !seen[h.InFlight] || h.Limit != groupLimit ||
					h.Waiting < 1 || h.InFlight+h.Starting > groupLimit {
					t.Errorf("run %d: group %+v; the origin of its two names had %v in flight while top ran", i, h, seen)
				}
			}
		}
		time.Sleep(150 * time.Millisecond)
	}
	// The time to the next start runs down: not always 0, nor always the delay.
	delete(pacedNext, 0)
	if len(pacedNext) < 2 {
		t.Errorf("the paced host (requests held %s, delay %s) showed next starts above 0 of %v, want two or more", pacedHold, pacedDelay, pacedNext)
	}
	if max := l.blog.maxInFlight(); max > groupLimit {
		t.Errorf("the two names of the group had %d in flight together, limit %d", max, groupLimit)
	}
}

// TestTopHostFilter: --host of top and of hosts, with a glob and an exact host. An exact host is
// shown by top even when idle (no load report names it), with its live state.
func TestTopHostFilter(t *testing.T) {
	l := startFieldsLoad(t)
	pacedPort := strings.TrimPrefix(l.pacedKey, "127.0.0.1:")
	for _, tc := range []struct {
		name, pattern string
		top           []string // hosts top shows, in order
		hosts         []string // hosts `hosts` lists, any order; nil: not checked
	}{
		{name: "none", pattern: "", top: []string{l.groupKey, l.busyKey, l.pacedKey}},
		{name: "glob port", pattern: "*:" + pacedPort, top: []string{l.pacedKey}, hosts: []string{l.pacedKey}},
		{name: "glob group", pattern: "domain:*", top: []string{l.groupKey}, hosts: []string{l.groupKey}},
		{name: "exact busy", pattern: l.busyKey, top: []string{l.busyKey}, hosts: []string{l.busyKey}},
		{name: "exact idle", pattern: l.idleKey, top: []string{l.idleKey}, hosts: []string{l.idleKey}},
		{name: "exact upper case", pattern: strings.ToUpper("LocalHost.Blog.Test"), top: []string{"localhost.blog.test"}, hosts: []string{}},
		{name: "no match", pattern: "*.nowhere.test", top: nil, hosts: []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var args []string
			if tc.pattern != "" {
				args = []string{"--host", tc.pattern}
			}
			got := topOnce(t, l.redis, args...)
			hs := topHosts(got)
			if tc.name == "none" {
				slices.Sort(hs) // the order of the busiest is TestTopFields'; here only the set
				slices.Sort(tc.top)
			}
			if !slices.Equal(hs, tc.top) {
				t.Errorf("top --host %q: %v, want %v", tc.pattern, hs, tc.top)
			}
			for _, h := range got.Hosts {
				if h.Host == l.idleKey && (h.InFlight != 0 || h.Waiting != 0 || h.Starting != 0 || h.NextStartIn != "0s") {
					t.Errorf("top --host %q: the idle host %+v", tc.pattern, h)
				}
			}
			if tc.hosts == nil {
				return
			}
			var list struct{ Hosts []struct{ Host string } }
			out := cli(t, nil, append([]string{"hosts", "-o", "json", "--redis", l.redis}, args...)...)
			if err := json.Unmarshal([]byte(out), &list); err != nil {
				t.Fatalf("hosts -o json: %v\n%s", err, out)
			}
			got2 := []string{}
			for _, h := range list.Hosts {
				got2 = append(got2, h.Host)
			}
			if !slices.Equal(got2, tc.hosts) {
				t.Errorf("hosts --host %q: %v, want %v", tc.pattern, got2, tc.hosts)
			}
		})
	}
}
