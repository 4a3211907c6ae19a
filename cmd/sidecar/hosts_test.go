package main_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crawlpolite/crawlpolite/internal/redistest"
)

type debugHosts struct {
	Matched int `json:"matched"`
	Hosts   []struct {
		Host                        string
		InFlight, Starting, Waiting int
		DelaySource, Robots         string
	} `json:"hosts"`
}

// TestDebugHosts: with the host saturated (limit 3, five requests held at the origin for a minute),
// /debug/hosts shows 3 in flight, which is what the origin holds, and 2 waiting; within two
// publishing periods the shared registry lists the host and this sidecar's load; when the requests
// end the load report empties. A bad limit is refused.
func TestDebugHosts(t *testing.T) {
	rs := redistest.Start(t)
	a := newOrigin(t, robotsA, holdA, false)
	s := startSidecar(t, nil, "--redis=redis://"+rs.Addr, "--policy-file="+writePolicy(t, a.host(), ""))
	c := s.client(t, false)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan struct{}, 5)
	for range 5 {
		go func() {
			defer func() { done <- struct{}{} }()
			req, _ := http.NewRequestWithContext(ctx, "GET", a.URL+"/slow", nil)
			if resp, err := c.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	var got debugHosts
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := s.adminGet(t, "/debug/hosts?host=127.0.0.1*")
		if code != 200 || json.Unmarshal([]byte(body), &got) != nil {
			t.Fatalf("/debug/hosts: %d %s", code, body)
		}
		if len(got.Hosts) == 1 && got.Hosts[0].InFlight == limitA && got.Hosts[0].Waiting == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(got.Hosts) != 1 || got.Hosts[0].Host != a.host() || got.Hosts[0].InFlight != limitA || got.Hosts[0].Waiting != 2 ||
		got.Hosts[0].Robots != "ok" || got.Hosts[0].DelaySource != "policy" {
		t.Fatalf("/debug/hosts: %+v; want %s with %d in flight, 2 waiting", got, a.host(), limitA)
	}
	if held := a.holding(); held != limitA {
		t.Errorf("the origin holds %d requests, /debug/hosts says %d", held, limitA)
	}
	if code, _ := s.adminGet(t, "/debug/hosts?limit=100000"); code != http.StatusBadRequest {
		t.Errorf("limit=100000: %d, want 400", code)
	}

	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	defer rdb.Close()
	load := func() string {
		ids, _ := rdb.ZRange(ctx, "crawlpolite:{active}:procs", 0, -1).Result()
		var all []string
		for _, id := range ids {
			v, _ := rdb.HGet(t.Context(), "crawlpolite:{active}:load:"+id, a.host()).Result()
			all = append(all, v)
		}
		return strings.Join(all, ",")
	}
	deadline = time.Now().Add(3 * time.Second)
	for load() != "3 0 2 policy ok" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if l := load(); l != "3 0 2 policy ok" {
		t.Errorf("published load %q, want \"3 0 2 policy ok\"", l)
	}
	if _, err := rdb.ZScore(ctx, "crawlpolite:{active}:keys", a.host()).Result(); err != nil {
		t.Errorf("%s not in the active registry: %v", a.host(), err)
	}
	cancel()
	for range 5 {
		<-done
	}
	deadline = time.Now().Add(3 * time.Second)
	for load() != "" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if l := load(); l != "" {
		t.Errorf("load %q after the requests ended, want none", l)
	}
}

// TestStateStarting: /state tells a request in flight at the origin from one granted and waiting
// for its start. Two requests to a site with a Crawl-delay of 1 s (limit 2, each held 3 s): the
// origin holds 1, and /state says 1 in flight and 1 starting (it said 2 in flight before), with the
// in-process semaphore and with Redis.
func TestStateStarting(t *testing.T) {
	rs := redistest.Start(t)
	for _, backend := range []string{"standalone", "redis"} {
		t.Run(backend, func(t *testing.T) {
			o := newOrigin(t, "User-agent: *\nCrawl-delay: 1\n", 3*time.Second, false)
			args := []string{"--policy-file=" + writePolicy(t, "other.test", "")}
			if backend == "redis" {
				args = append(args, "--redis=redis://"+rs.Addr)
			}
			s := startSidecar(t, nil, args...)
			c := s.client(t, false)
			_, _ = c.Get(o.URL + "/robots-warmup") // robots.txt fetched and the gate set: the next two start 1 s apart
			time.Sleep(1100 * time.Millisecond)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			for range 2 {
				go func() {
					req, _ := http.NewRequestWithContext(ctx, "GET", o.URL+"/page", nil)
					if resp, err := c.Do(req); err == nil {
						resp.Body.Close()
					}
				}()
			}
			var st struct{ InFlight, Starting, Waiting int }
			deadline := time.Now().Add(time.Second)
			for time.Now().Before(deadline) {
				code, body := s.adminGet(t, "/state?host="+o.host())
				var m map[string]json.RawMessage
				if code != 200 || json.Unmarshal([]byte(body), &m) != nil || json.Unmarshal(m[o.host()], &st) != nil {
					t.Fatalf("/state: %d %s", code, body)
				}
				if st.InFlight == 1 && st.Starting == 1 {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if st.InFlight != 1 || st.Starting != 1 || o.holding() != 1 {
				t.Errorf("/state %+v, origin holds %d: want 1 in flight (as the origin), 1 starting", st, o.holding())
			}
		})
	}
}
