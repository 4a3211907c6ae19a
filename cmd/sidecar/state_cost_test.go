package main_test

import (
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

// TestStateRedisCalls is issue 10 item 8's "/state costs Redis a few calls", counted by redis-server
// for one /state of stateMaxHosts (8) hosts, after a first call has loaded the scripts. The bound:
// at most two scripts per host (its semaphore state, and the in-flight/starting split), each a
// constant number of O(1) commands (HGETALL, TIME, ZCOUNT: no scan of keys or of a host's queue),
// so one GET costs Redis at most 16 script calls and 64 commands whatever the crawl holds, and
// /state is refused beyond 8 hosts and 2 requests at once.
func TestStateRedisCalls(t *testing.T) {
	const hosts = 8
	rs := redistest.Start(t)
	s := startSidecar(t, nil, "--redis=redis://"+rs.Addr, "--policy-file="+writeFaultPolicy(t, 2))
	q := url.Values{}
	for i := range hosts {
		q.Add("host", fmt.Sprintf("h%d.example.com", i))
	}
	if code, body := s.adminGet(t, "/state?"+q.Encode()); code != 200 {
		t.Fatalf("/state: %d %s", code, body)
	}
	if _, err := rs.Do("CONFIG", "RESETSTAT"); err != nil {
		t.Fatal(err)
	}
	if code, body := s.adminGet(t, "/state?"+q.Encode()); code != 200 {
		t.Fatalf("/state: %d %s", code, body)
	}
	by, total := commandCalls(t, rs)
	t.Logf("one /state of %d hosts: %d commands: %v", hosts, total, by)
	scripts := by["evalsha"] + by["eval"] + by["evalsha_ro"] + by["eval_ro"]
	if scripts > 2*hosts {
		t.Errorf("%d script calls for %d hosts, bound %d", scripts, hosts, 2*hosts)
	}
	if total > 8*hosts {
		t.Errorf("%d commands for %d hosts, bound %d", total, hosts, 8*hosts)
	}
	for name := range by {
		switch name {
		case "evalsha", "eval", "evalsha_ro", "eval_ro", "hgetall", "hmget", "hget", "time", "zcount", "zcard", "get", "pttl", "exists":
		default:
			t.Errorf("/state ran %s (%d calls), not in the O(1) set the bound assumes", name, by[name])
		}
	}
	if code, _ := s.adminGet(t, "/state?"+q.Encode()+"&host=one-too-many.example.com"); code != 400 {
		t.Errorf("/state of %d hosts: %d, want 400", hosts+1, code)
	}
}
