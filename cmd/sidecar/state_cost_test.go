package main_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/crawlpolite/crawlpolite/internal/redistest"
)

// commandCalls is redis-server's count of commands executed since the last CONFIG RESETSTAT, by
// command (INFO commandstats; the commands scripts run inside are counted too), without the INFO
// call that reads them.
func commandCalls(t *testing.T, rs *redistest.Server) (map[string]int, int) {
	t.Helper()
	info, err := rs.Do("INFO", "commandstats")
	if err != nil {
		t.Fatal(err)
	}
	by, total := map[string]int{}, 0
	for _, l := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(l), ":calls=")
		if !ok {
			continue
		}
		n, _ := strconv.Atoi(strings.SplitN(rest, ",", 2)[0])
		name = strings.TrimPrefix(name, "cmdstat_")
		if name == "info" || name == "config|resetstat" {
			continue
		}
		by[name], total = n, total+n
	}
	return by, total
}

// TestStateRedisCalls is issue 10 item 8's "/state costs Redis a few calls", counted by
// redis-server for one /state of stateMaxHosts (8) hosts, after a first call has loaded the script.
// The bound: one pipelined Observe call, which on one server is one script for every key and on
// Cluster one script per slot (at most one per host), each running TIME and, per key, HGETALL of
// the host's meta hash (its holders, at most its limit) and ZCOUNT of its queue: no scan of keys.
// /state is refused beyond 8 hosts and 2 requests at once. Before it was batched: 16 scripts in
// 9 round trips and 64 commands on one server.
func TestStateRedisCalls(t *testing.T) {
	const hosts = 8
	for _, tc := range []struct {
		name       string
		start      func(t *testing.T) (url string, nodes []*redistest.Server)
		maxScripts int
	}{
		{"one server", func(t *testing.T) (string, []*redistest.Server) {
			rs := redistest.Start(t)
			return "redis://" + rs.Addr, []*redistest.Server{rs}
		}, 1},
		{"cluster", func(t *testing.T) (string, []*redistest.Server) {
			cl := redistest.StartCluster(t)
			return clusterURL(cl.Addrs()), cl.Nodes
		}, hosts},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, nodes := tc.start(t)
			s := startSidecar(t, nil, "--redis="+u, "--policy-file="+writeFaultPolicy(t, 2))
			q := url.Values{}
			for i := range hosts {
				q.Add("host", fmt.Sprintf("h%d.example.com", i))
			}
			if code, body := s.adminGet(t, "/state?"+q.Encode()); code != 200 {
				t.Fatalf("/state: %d %s", code, body)
			}
			for _, n := range nodes {
				if _, err := n.Do("CONFIG", "RESETSTAT"); err != nil {
					t.Fatal(err)
				}
			}
			code, body := s.adminGet(t, "/state?"+q.Encode())
			if code != 200 {
				t.Fatalf("/state: %d %s", code, body)
			}
			by, total := map[string]int{}, 0
			for _, n := range nodes {
				b, _ := commandCalls(t, n)
				for k, v := range b {
					if k == "ping" || strings.HasPrefix(k, "cluster|") || k == "readonly" { // topology and health, not /state's
						continue
					}
					by[k], total = by[k]+v, total+v
				}
			}
			t.Logf("one /state of %d hosts: %d commands: %v", hosts, total, by)
			scripts := by["evalsha"] + by["eval"] + by["evalsha_ro"] + by["eval_ro"]
			if scripts > tc.maxScripts {
				t.Errorf("%d script calls for %d hosts, bound %d", scripts, hosts, tc.maxScripts)
			}
			if bound := scripts*2 + 2*hosts; total > bound {
				t.Errorf("%d commands for %d hosts, bound %d (scripts, their TIME, HGETALL and ZCOUNT per host)", total, hosts, bound)
			}
			for name := range by {
				switch name {
				case "evalsha", "eval", "evalsha_ro", "eval_ro", "hgetall", "time", "zcount":
				default:
					t.Errorf("/state ran %s (%d calls), not in the O(1) set the bound assumes", name, by[name])
				}
			}
			var m map[string]hostState
			if err := json.Unmarshal([]byte(body), &m); err != nil || len(m) != hosts {
				t.Errorf("/state answer %s: %v, want %d hosts", body, err, hosts)
			}
			if code, _ := s.adminGet(t, "/state?"+q.Encode()+"&host=one-too-many.example.com"); code != 400 {
				t.Errorf("/state of %d hosts: %d, want 400", hosts+1, code)
			}
		})
	}
}
