package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/crawlpolite/crawlpolite/internal/redistest"
)

type explainJSON struct {
	Verdict string `json:"verdict"`
	Reasons []struct {
		Kind, Effect, Detail string
	} `json:"reasons"`
	Policy map[string]string `json:"policy"`
	Robots *struct {
		Status, Group, Rule, CrawlDelay string
	} `json:"robots"`
	State struct {
		InFlight, Starting, Waiting, Limit int
	} `json:"state"`
}

func (e explainJSON) reason(kind string) (effect, detail string) {
	for _, r := range e.Reasons {
		if r.Kind == kind {
			return r.Effect, r.Detail
		}
	}
	return "", ""
}

// TestExplain asks `crawlpolite explain -o json` about each reason a request can wait or be refused
// for, against a real sidecar and redis-server after real requests: a robots.txt rule, an
// unreachable robots.txt (503), a missing one (404: allowed), one not cached yet, the policy rule
// behind a limit, a Crawl-delay capped by maxCrawlDelay and one under it, a backoff after a 429
// with Retry-After, and a queue behind a saturated host.
func TestExplain(t *testing.T) {
	rs := redistest.Start(t)
	redisURL := "redis://" + rs.Addr
	a := newOrigin(t, robotsA, 0, 3*time.Second)                     // limit 1, requests held
	down := newOrigin(t, "", http.StatusServiceUnavailable, 0)       // robots.txt 503
	capped := newOrigin(t, "User-agent: *\nCrawl-delay: 10\n", 0, 0) // capped to 2s
	paced := newOrigin(t, robotsB, 0, 0)                             // 0.2s, under the cap
	busy := newOrigin(t, "User-agent: testbot\nAllow: /\n", 0, 0)    // answers /busy with 429
	pol := writeFile(t, "policy.yaml", fmt.Sprintf("defaults:\n  maxConcurrency: 2\n  minDelay: 0s\n  waitTimeout: 60s\n"+
		"rules:\n  - hosts: [%q]\n    maxConcurrency: 1\n  - hosts: [%q]\n    maxCrawlDelay: 2s\n", a.host(), capped.host()))
	s := startSidecar(t, nil, "--redis="+redisURL, "--policy-file="+pol)
	c := s.client()
	explain := func(u string) explainJSON {
		t.Helper()
		out := cli(t, []string{"CRAWLPOLITE_REDIS=" + redisURL}, "explain", "--agent", "testbot", "--policy-file", pol, "-o", "json", u)
		var e explainJSON
		if err := json.Unmarshal([]byte(out), &e); err != nil {
			t.Fatalf("explain %s: %v\n%s", u, err, out)
		}
		return e
	}

	if code := get(t, c, a.URL+"/private/x"); code != http.StatusForbidden {
		t.Fatalf("/private through the sidecar: %d, want 403", code)
	}
	e := explain(a.URL + "/private/x")
	if eff, d := e.reason("robots"); e.Verdict != "refused" || eff != "refuses" || !strings.Contains(d, "disallow: /private") ||
		e.Robots == nil || e.Robots.Rule != "disallow: /private" || !strings.Contains(e.Robots.Group, "user-agent: *") {
		t.Errorf("robots rule: %+v", e)
	}
	if e.Policy["maxConcurrency"] != "rule at line 6 ("+a.host()+")" || e.Policy["minDelay"] != "defaults" {
		t.Errorf("policy sources: %v", e.Policy)
	}
	if e := explain(a.URL + "/page"); e.Verdict != "allowed" {
		t.Errorf("an idle host, allowed path: %+v", e)
	}

	if code := get(t, c, down.URL+"/page"); code != http.StatusForbidden {
		t.Fatalf("a host whose robots.txt answers 503: %d, want 403", code)
	}
	if e := explain(down.URL + "/page"); e.Verdict != "refused" || e.Robots.Status != "unreachable" {
		t.Errorf("robots unreachable: %+v", e)
	}
	missing := newOrigin(t, "", http.StatusNotFound, 0) // robots.txt 404: everything allowed
	if code := get(t, c, missing.URL+"/page"); code != http.StatusOK {
		t.Fatalf("a host without robots.txt: %d, want 200", code)
	}
	if e := explain(missing.URL + "/page"); e.Verdict != "allowed" || e.Robots.Status != "unavailable" {
		t.Errorf("robots unavailable (404): %+v", e)
	}
	if e := explain(newOrigin(t, "", 0, 0).URL + "/"); e.Robots.Status != "not_cached" || e.Verdict != "allowed" {
		t.Errorf("robots not cached: %+v", e)
	}

	for range 2 {
		_ = get(t, c, capped.URL+"/page")
	}
	e = explain(capped.URL + "/page")
	if eff, d := e.reason("crawl-delay"); e.Verdict != "wait" || eff != "waits" || !strings.Contains(d, "Crawl-delay 10s capped to 2s") {
		t.Errorf("capped Crawl-delay: %+v", e)
	}
	if _, d := e.reason("delay"); !strings.Contains(d, "next start in") {
		t.Errorf("capped Crawl-delay: no delay gate reason: %+v", e)
	}
	_ = get(t, c, paced.URL+"/page")
	if eff, d := explain(paced.URL + "/page").reason("crawl-delay"); eff != "waits" || !strings.Contains(d, "Crawl-delay 200ms (under maxCrawlDelay 30s)") {
		t.Errorf("Crawl-delay under the cap: %s %q", eff, d)
	}

	if code := get(t, c, busy.URL+"/busy"); code != http.StatusTooManyRequests {
		t.Fatalf("/busy: %d", code)
	}
	e = explain(busy.URL + "/page")
	if eff, d := e.reason("backoff"); e.Verdict != "wait" || eff != "waits" || !strings.Contains(d, "level 1") {
		t.Errorf("backoff after a 429: %+v", e)
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	wg := crawl(ctx, c, a.URL, 3) // limit 1: one in flight, two queued
	defer wg.Wait()
	defer cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		e = explain(a.URL + "/page")
		if e.State.Waiting == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("explain (text):\n%s", cli(t, []string{"CRAWLPOLITE_REDIS=" + redisURL}, "explain", "--agent", "testbot", "--policy-file", pol, a.URL+"/private/x"))
	t.Logf("explain -o json:\n%s", cli(t, []string{"CRAWLPOLITE_REDIS=" + redisURL}, "explain", "--agent", "testbot", "--policy-file", pol, "-o", "json", a.URL+"/page"))
	if eff, _ := explain(a.URL + "/private/x").reason("queue"); eff != "none" {
		t.Errorf("a path robots.txt refuses never queues: queue effect %q", eff)
	}
	if eff, d := e.reason("queue"); e.Verdict != "wait" || eff != "waits" || e.State.InFlight != 1 || !strings.Contains(d, "2 queued ahead") {
		t.Errorf("queue: %+v", e)
	}
}
