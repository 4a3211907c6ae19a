package main_test

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
)

// TestMemoryLimit: --memory-limit (the container's limit, injected with a resourceFieldRef) sets the
// Go memory limit to 80% of it unless GOMEMLIMIT is set, and gives the robots.txt cache an eighth of
// it (at most 1 GiB). The Go limit is read back from the runtime (go_gc_gomemlimit_bytes on /metrics),
// the cache budget from the startup debug line.
func TestMemoryLimit(t *testing.T) {
	const mi = 1 << 20
	for _, tc := range []struct {
		name, limit string
		env         []string
		goLimit     int64
		robots      int64 // 0: no line (the cache's default budget)
	}{
		{name: "quantity", limit: "256Mi", goLimit: 256 * mi / 10 * 8, robots: 32 * mi},
		{name: "bytes from a resourceFieldRef", limit: "1073741824", goLimit: 1024 * mi / 10 * 8, robots: 128 * mi},
		{name: "GOMEMLIMIT wins", limit: "256Mi", env: []string{"GOMEMLIMIT=100MiB"}, goLimit: 100 * mi, robots: 32 * mi},
		{name: "cache budget capped at 1 GiB", limit: "16Gi", goLimit: 16 * 1024 * mi / 10 * 8, robots: 1024 * mi},
		{name: "none", limit: "", goLimit: math.MaxInt64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startSidecar(t, tc.env, "--memory-limit="+tc.limit, "--log-level=debug")
			if got := goMemLimit(t, s); got != float64(tc.goLimit) {
				t.Errorf("Go memory limit %.0f, want %d", got, tc.goLimit)
			}
			found, robots := false, int64(0)
			for _, l := range strings.Split(s.logs(), "\n") {
				var m struct {
					Msg         string
					RobotsCache int64 `json:"robots_cache"`
				}
				if json.Unmarshal([]byte(l), &m) == nil && m.Msg == "memory limit" {
					found, robots = true, m.RobotsCache
				}
			}
			switch {
			case tc.robots == 0 && found:
				t.Errorf("a memory limit line without --memory-limit: robots cache %d", robots)
			case tc.robots != 0 && robots != tc.robots:
				t.Errorf("robots cache budget %d (line found %v), want %d", robots, found, tc.robots)
			}
		})
	}
}

// goMemLimit reads the runtime's memory limit from the sidecar's /metrics.
func goMemLimit(t *testing.T, s *sidecar) float64 {
	t.Helper()
	_, body := s.adminGet(t, "/metrics")
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, "go_gc_gomemlimit_bytes "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatal("/metrics has no go_gc_gomemlimit_bytes")
	return 0
}
