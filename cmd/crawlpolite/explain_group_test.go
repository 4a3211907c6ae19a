package main_test

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/crawlpolite/crawlpolite/internal/redistest"
)

// TestExplainGroup: explain reads the semaphore state of the key a sidecar takes the turn on, the
// group's under groupBy domain or ip, not the host's own. Names of one origin (through a test DNS
// server, the --resolver of both the sidecar and the CLI) are crawled by a real sidecar on a real
// redis-server with limit 1 and requests held; explain of a sibling name that never sent a request
// sees the group's request in flight and the one queued, and names the group key. A host grouped
// by itself keeps its own (idle) key.
func TestExplainGroup(t *testing.T) {
	rs := redistest.Start(t)
	redisURL := "redis://" + rs.Addr
	loop := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	dns := startDNS(t, map[string][]netip.Addr{"*.blog.test": loop, "shop-one.test": loop, "shop-two.test": loop,
		"h1.test": loop, "h2.test": loop})
	pol := writeFile(t, "policy.yaml", "defaults:\n  maxConcurrency: 1\n  minDelay: 0s\n  waitTimeout: 60s\n"+
		"rules:\n  - hosts: [\"*.blog.test\"]\n    groupBy: domain\n  - hosts: [shop-one.test, shop-two.test]\n    groupBy: ip\n"+
		"  - hosts: [h1.test, h2.test]\n    robots: ignore\n")
	s := startSidecar(t, nil, "--redis="+redisURL, "--policy-file="+pol, "--resolver="+dns)
	c := s.client()

	for _, tc := range []struct {
		name, crawled, asked string
		group, groupBy       string // the key explain reports for asked, and its groupBy
		shared               bool   // asked shares crawled's budget: explain sees its requests
	}{
		{name: "domain", crawled: "a.blog.test", asked: "www.b.blog.test", group: "domain:blog.test", groupBy: "domain", shared: true},
		{name: "ip", crawled: "shop-one.test", asked: "shop-two.test", group: "ip:127.0.0.1", groupBy: "ip", shared: true},
		{name: "host", crawled: "h1.test", asked: "h2.test", groupBy: "host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOrigin(t, "User-agent: *\nAllow: /\n", 0, 3*time.Second)
			port := strings.TrimPrefix(o.host(), "127.0.0.1:")
			asked := tc.asked + ":" + port
			if tc.group == "" {
				tc.group = asked
			}
			if code := get(t, c, "http://"+tc.crawled+":"+port+"/robots.txt"); code != 200 {
				t.Fatalf("robots.txt through the sidecar: %d", code)
			}
			wg := crawl(t.Context(), c, "http://"+tc.crawled+":"+port, 2) // limit 1: one in flight, one queued
			t.Cleanup(wg.Wait)
			deadline := time.Now().Add(10 * time.Second)
			for o.maxInFlight() == 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			time.Sleep(200 * time.Millisecond) // the second worker queues behind the first
			out := cli(t, []string{"CRAWLPOLITE_REDIS=" + redisURL}, "explain", "--policy-file", pol, "--resolver", dns,
				"-o", "json", "http://"+asked+"/page")
			var e struct {
				explainJSON
				Host, Group, GroupBy string
			}
			if err := json.Unmarshal([]byte(out), &e); err != nil {
				t.Fatalf("explain: %v\n%s", err, out)
			}
			if e.Host != asked || e.Group != tc.group || e.GroupBy != tc.groupBy {
				t.Errorf("explain %s: host %q group %q groupBy %q, want %q %q %q", asked, e.Host, e.Group, e.GroupBy, asked, tc.group, tc.groupBy)
			}
			if _, d := e.reason("group"); !strings.Contains(d, "key "+tc.group) {
				t.Errorf("group reason %q does not name key %s", d, tc.group)
			}
			if tc.shared {
				if eff, _ := e.reason("queue"); e.Verdict != "wait" || eff != "waits" || e.State.InFlight != 1 || e.State.Waiting != 1 {
					t.Errorf("explain %s, whose group %s has 1 in flight and 1 queued: %+v", asked, tc.group, e)
				}
			} else if e.Verdict != "allowed" || e.State.InFlight != 0 {
				t.Errorf("explain %s, grouped by itself and idle: %+v", asked, e)
			}
			text := cli(t, []string{"CRAWLPOLITE_REDIS=" + redisURL}, "explain", "--policy-file", pol, "--resolver", dns, "http://"+asked+"/page")
			if first, _, _ := strings.Cut(text, "\n"); !strings.Contains(first, fmt.Sprintf("(key %s)", tc.group)) {
				t.Errorf("text output does not name the key %s:\n%s", tc.group, text)
			}
		})
	}
}
