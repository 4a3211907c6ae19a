package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
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
	a, b := newOrigin(t, robotsA, 0, holdA), newOrigin(t, robotsB, 0, time.Millisecond)
	pol := writeFile(t, "policy.yaml", fmt.Sprintf("defaults:\n  maxConcurrency: 2\n  minDelay: 0s\n"+
		"rules:\n  - hosts: [%q]\n    maxConcurrency: %d\n", a.host(), limitA))
	ctx, cancel := context.WithCancel(t.Context())
	var wgs []*sync.WaitGroup
	defer func() {
		cancel()
		for _, wg := range wgs {
			wg.Wait()
		}
	}()
	for range 2 {
		s := startSidecar(t, nil, "--redis="+redisURL, "--policy-file="+pol)
		wgs = append(wgs, crawl(ctx, s.client(), a.URL, 4), crawl(ctx, s.client(), b.URL, 2))
	}
	time.Sleep(2500 * time.Millisecond)
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
