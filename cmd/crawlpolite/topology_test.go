package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/crawlpolite/crawlpolite/internal/redistest"
)

// TestTopCluster: two sidecars on a real six-node Redis Cluster (every key of a host in its slot,
// the registry in one); top, hosts and robots read it through a redis+cluster:// URL.
func TestTopCluster(t *testing.T) {
	cl := redistest.StartCluster(t)
	addrs := cl.Addrs()
	q := url.Values{}
	for _, a := range addrs[1:] {
		q.Add("addr", a)
	}
	redisURL := "redis+cluster://" + addrs[0] + "?" + q.Encode()
	a, b := twoSidecarsCrawling(t, redisURL, "")
	env := []string{"CRAWLPOLITE_REDIS=" + redisURL}
	var got topJSON
	before := time.Now()
	out := cli(t, env, "top", "--once", "-o", "json")
	if err := json.Unmarshal([]byte(out), &got); err != nil || len(got.Hosts) != 2 {
		t.Fatalf("top on a cluster: %v\n%s", err, out)
	}
	if h := got.Hosts[0]; h.Host != a.host() || h.Limit != limitA || h.InFlight > limitA || !a.seen(before, time.Now())[h.InFlight] || h.Waiting < 1 {
		t.Errorf("top on a cluster: A %+v (origin had %v)", h, a.seen(before, time.Now()))
	}
	if h := got.Hosts[1]; h.Host != b.host() || h.DelaySource != "robots" || h.Delay != "200ms" {
		t.Errorf("top on a cluster: B %+v", h)
	}
	hosts := cli(t, env, "hosts")
	if !strings.Contains(hosts, a.host()+"\n") || !strings.Contains(hosts, b.host()+"\n") {
		t.Errorf("hosts on a cluster:\n%s", hosts)
	}
	var rob struct{ Status, Rule, Rules string }
	out = cli(t, env, "robots", "--scheme", "http", "--path", "/private/x", "-o", "json", a.host())
	if err := json.Unmarshal([]byte(out), &rob); err != nil || rob.Status != "ok" || rob.Rule != "disallow: /private" {
		t.Errorf("robots on a cluster: %v\n%s", err, out)
	}
}

// TestPassword: the CLI takes the password from CRAWLPOLITE_REDIS_PASSWORD, as the sidecar does,
// and prints it nowhere: not with a wrong one, not when the URL itself carries one.
func TestPassword(t *testing.T) {
	const secret = "s3cr3t-pa55"
	rs := redistest.Start(t, "--requirepass", secret)
	a := newOrigin(t, robotsA, 0, holdA)
	s := startSidecar(t, []string{"CRAWLPOLITE_REDIS_PASSWORD=" + secret}, "--redis=redis://"+rs.Addr)
	ctx, cancel := context.WithCancel(t.Context())
	wg := crawl(ctx, s.client(), a.URL, 3)
	defer wg.Wait()
	defer cancel()
	time.Sleep(2 * time.Second)
	out := cli(t, []string{"CRAWLPOLITE_REDIS=redis://" + rs.Addr, "CRAWLPOLITE_REDIS_PASSWORD=" + secret}, "top", "--once")
	if !strings.Contains(out, a.host()) || strings.Contains(out, secret) {
		t.Errorf("top with the password:\n%s", out)
	}
	for _, env := range [][]string{
		{"CRAWLPOLITE_REDIS=redis://" + rs.Addr, "CRAWLPOLITE_REDIS_PASSWORD=wrong-" + secret},
		{"CRAWLPOLITE_REDIS=redis://:" + secret + "x@" + rs.Addr},
		{"CRAWLPOLITE_REDIS=redis://:" + secret + "@[bad"},
	} {
		out, stderr, err := cliRun(env, "top", "--once")
		if err == nil || strings.Contains(out+stderr, secret) {
			t.Errorf("%v: err %v, output with the secret?\n%s%s", env, err, out, stderr)
		}
	}
}

// TestTopSentinel: two sidecars on a real Sentinel-managed primary (one master, two replicas,
// three sentinels); top and hosts read it through a redis+sentinel:// URL, before and after the
// master is killed and a replica promoted.
func TestTopSentinel(t *testing.T) {
	st := redistest.StartSentinel(t)
	q := url.Values{"master_name": {redistest.SentinelMaster}}
	for _, a := range st.Addrs()[1:] {
		q.Add("addr", a)
	}
	redisURL := "redis+sentinel://" + st.Addrs()[0] + "?" + q.Encode()
	a, b := twoSidecarsCrawling(t, redisURL, "  waitTimeout: 60s\n")
	env := []string{"CRAWLPOLITE_REDIS=" + redisURL}
	// check reads top once; with wait, it tries again for up to 15 s until A is back at its limit
	// with a queue (the sidecars follow a promotion within seconds; what they held is forgotten).
	check := func(when string, wait bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			before := time.Now()
			out := cli(t, env, "top", "--once", "-o", "json")
			var got topJSON
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("%s: top on a sentinel: %v\n%s", when, err, out)
			}
			seen := a.seen(before, time.Now())
			ok := len(got.Hosts) == 2 && got.Hosts[0].Host == a.host() && got.Hosts[0].Limit == limitA && got.Hosts[0].Waiting >= 1 &&
				got.Hosts[0].InFlight <= limitA && seen[got.Hosts[0].InFlight] &&
				got.Hosts[1].Host == b.host() && got.Hosts[1].DelaySource == "robots" && got.Hosts[1].Delay == "200ms"
			if ok {
				return
			}
			if !wait || time.Now().After(deadline) {
				t.Fatalf("%s: top on a sentinel (origin A had %v in flight while it ran):\n%s", when, seen, out)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	check("before the failover", false)
	if hosts := cli(t, env, "hosts"); !strings.Contains(hosts, a.host()+"\n") || !strings.Contains(hosts, b.host()+"\n") {
		t.Errorf("hosts on a sentinel:\n%s", hosts)
	}
	old := st.Current()
	st.Master.Kill()
	addr, took, err := st.WaitFailover(old, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("promoted %s after %v", addr, took)
	check("after the failover", true)
}

// twoSidecarsCrawling starts two sidecars on redisURL, each crawling origin A (limit limitA, 4
// workers, robots.txt robotsA) and origin B (2 workers, robotsB's Crawl-delay), and lets the load
// settle. defaults adds lines to the policy's defaults. The crawls end with the test, before the
// sidecars stop.
func twoSidecarsCrawling(t *testing.T, redisURL, defaults string) (a, b *origin) {
	t.Helper()
	a, b = newOrigin(t, robotsA, 0, holdA), newOrigin(t, robotsB, 0, time.Millisecond)
	pol := writeFile(t, "policy.yaml", fmt.Sprintf("defaults:\n  maxConcurrency: 2\n  minDelay: 0s\n"+defaults+
		"rules:\n  - hosts: [%q]\n    maxConcurrency: %d\n", a.host(), limitA))
	for range 2 {
		s := startSidecar(t, nil, "--redis="+redisURL, "--policy-file="+pol)
		wa, wb := crawl(t.Context(), s.client(), a.URL, 4), crawl(t.Context(), s.client(), b.URL, 2)
		t.Cleanup(func() { wa.Wait(); wb.Wait() }) // t.Context() has ended; runs before the sidecars stop
	}
	time.Sleep(2500 * time.Millisecond)
	return a, b
}
