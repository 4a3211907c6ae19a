package main_test

import (
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/crawlpolite/crawlpolite/internal/redistest"
)

// TestRedisPassword: the password reaches the sidecar from CRAWLPOLITE_REDIS_PASSWORD (a secretKeyRef
// in the pod), not in the URL; and no error or log line carries a password given in a URL.
func TestRedisPassword(t *testing.T) {
	const secret = "s3cr%zzet-Xq9"
	rs := redistest.Start(t, "--requirepass", secret)
	origin := newOrigin(t, "", 0, false)
	s := startSidecar(t, []string{"CRAWLPOLITE_REDIS_PASSWORD=" + secret}, "--redis=redis://"+rs.Addr)
	if code, _ := s.adminGet(t, "/readyz"); code != http.StatusOK {
		t.Fatalf("readyz with the password from the environment: %d\n%s", code, s.logs())
	}
	resp, err := s.client(t, false).Get(origin.URL + "/page")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("request through a password-protected Redis: %d\n%s", resp.StatusCode, s.logs())
	}
	if strings.Contains(s.logs(), secret) {
		t.Fatalf("the password is in the sidecar's log:\n%s", s.logs())
	}

	// A password in a URL that does not parse: the error (copied into pod status) must not show it.
	for _, url := range []string{"redis://:" + secret + "@" + rs.Addr, "redis://user:" + secret + "@" + rs.Addr + "/notadb"} {
		out, err := exec.Command(binary, "--redis="+url, "--listen=127.0.0.1:0", "--admin-listen=127.0.0.1:0").CombinedOutput()
		if err == nil {
			t.Fatalf("--redis=%s: started, want a refusal", url)
		}
		for _, leak := range []string{secret, "zzet"} {
			if strings.Contains(string(out), leak) {
				t.Fatalf("--redis error shows the password (%q):\n%s", leak, out)
			}
		}
	}
}

// TestAdminBounded: no admin request may cost the shared Redis more than a few calls. /state takes
// at most 8 hosts, /readyz pings at most once a second whatever the probe rate, and its answer does
// not carry Redis's error text.
func TestAdminBounded(t *testing.T) {
	rs := redistest.Start(t)
	s := startSidecar(t, nil, "--redis=redis://"+rs.Addr)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	t.Cleanup(func() { _ = rdb.Close() })

	q := strings.Repeat("host=a.example&", 9)
	if code, _ := s.adminGet(t, "/state?"+q); code != http.StatusBadRequest {
		t.Fatalf("/state with 9 hosts: %d, want 400", code)
	}
	if code, body := s.adminGet(t, "/state?"+strings.Repeat("host=a.example&", 8)); code != http.StatusOK {
		t.Fatalf("/state with 8 hosts: %d %s", code, body)
	}

	before := pings(t, rdb)
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get("http://" + s.admin + "/readyz")
			if err == nil {
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	// The sidecar's own client may ping once on connect; 50 probes within well under a second
	// cost at most a couple more.
	if n := pings(t, rdb) - before; n > 3 {
		t.Fatalf("50 /readyz probes cost %d Redis PINGs, want at most 3", n)
	}

	rs.Stop()
	code, body := s.adminGet(t, "/readyz")
	for code == http.StatusOK { // the cached answer lasts up to a second
		code, body = s.adminGet(t, "/readyz")
	}
	if code != http.StatusServiceUnavailable || strings.Contains(body, "127.0.0.1") || strings.Contains(body, "dial") {
		t.Fatalf("/readyz with Redis down: %d %q, want 503 without Redis's error text", code, body)
	}
}

// pings is how many PINGs Redis has served.
func pings(t *testing.T, rdb *redis.Client) int {
	t.Helper()
	info, err := rdb.Info(t.Context(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(line, "cmdstat_ping:calls="); ok {
			var n int
			_, _ = fmt.Sscanf(rest, "%d", &n)
			return n
		}
	}
	return 0
}
