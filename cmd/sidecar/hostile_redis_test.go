package main_test

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crawlpolite/crawlpolite/internal/redistest"
)

// updateBombs rewrites the deflate bombs in testdata (building one means compressing 256 MiB, which
// takes minutes under -race; reading one back takes milliseconds):
//
//	go test -run TestHostileRedisValues ./cmd/sidecar/ -args -update-bombs
var updateBombs = flag.Bool("update-bombs", false, "rewrite testdata/hostile-redis/*.v2.gz")

// deflateBomb is a stored robots.txt value (format v2, status Fetched) whose body inflates to 256 MiB
// of what fill repeats, kept gzipped in testdata/hostile-redis/name.v2.gz.
func deflateBomb(t *testing.T, name, fill string) string {
	t.Helper()
	path := filepath.Join("testdata", "hostile-redis", name+".v2.gz")
	if *updateBombs {
		var b bytes.Buffer
		b.WriteString("v2 0 200\n")
		w, err := flate.NewWriter(&b, flate.BestCompression)
		if err != nil {
			t.Fatal(err)
		}
		chunk := []byte(strings.Repeat(fill, (1<<20)/len(fill)))
		for written := 0; written < 256<<20; written += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		var g bytes.Buffer
		gw, _ := gzip.NewWriterLevel(&g, gzip.BestCompression)
		_, _ = gw.Write(b.Bytes())
		if err := gw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, g.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	v, err := io.ReadAll(io.LimitReader(gr, 4<<20))
	if err != nil {
		t.Fatal(err)
	}
	return string(v)
}

// TestHostileRedisValues is TestHostileSites for what the sidecars read from Redis (issue 10, items
// 3 and 4, with Redis as the store): two sidecars share a redis-server.
//   - Agreement: for hosts with near-limit robots.txt (non-ASCII, wildcards, the decisive group
//     last), the sidecar that fetched the file and the one reading it from Redis answer every probe
//     path alike, and the reader never fetches it.
//   - Hostile values: robots keys written into Redis before the sidecars meet the host (garbled
//     bytes, garbled deflate, deflate bombs of 256 MiB of zeros and of rule lines, an unknown
//     version, a header only) are ignored: both sidecars answer from the site's real robots.txt,
//     keep their PIDs, log no panic, and stay under hostileRSSLimit with the 256Mi memory limit.
func TestHostileRedisValues(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	rs := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(pol, []byte("defaults:\n  maxConcurrency: 4\n  minDelay: 0s\n  waitTimeout: 30s\n  robots: enforce\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	saved := binary
	binary = plainBinary(t)
	cars := []*sidecar{
		startSidecar(t, nil, "--redis=redis://"+rs.Addr, "--policy-file="+pol, "--memory-limit=268435456"),
		startSidecar(t, nil, "--redis=redis://"+rs.Addr, "--policy-file="+pol, "--memory-limit=268435456"),
	}
	binary = saved
	var clients []*http.Client
	for _, s := range cars {
		c := s.client(t, false)
		c.Timeout = 30 * time.Second
		clients = append(clients, c)
	}
	get := func(c *http.Client, u string) int {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", u, nil)
		req.Header.Set("User-Agent", "testbot/1.0")
		resp, err := c.Do(req)
		if err != nil {
			t.Errorf("GET %s: %v", u, err)
			return 0
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	key := func(o *origin) string { return "crawlpolite:robots:{" + o.URL + "}" }

	var peak atomic.Int64
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			for _, s := range cars {
				peak.Store(max(peak.Load(), rss(s.cmd.Process.Pid, "VmHWM"), rss(s.cmd.Process.Pid, "VmRSS")))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	// Agreement on near-limit files.
	for i, size := range []int{300 << 10, 490 << 10} {
		o := newOrigin(t, "", 0, false)
		o.robots = hostileRobots(o.host(), size) + "\nUser-agent: *\nDisallow: /secret\n"
		paths := []string{"/page", "/secret", "/secret/x", "/" + o.host() + "/3/ü", "/" + o.host() + "/3/%C3%BC",
			"/a" + o.host() + "-3-zzzzzzzz-é-q", "/a" + o.host() + "-3-zzzzzzzz-é-qx", "/a" + o.host() + "-99999-zzzzzzzz" + "%C3%A9q"}
		var codes [2][]int
		for j, c := range clients {
			for _, p := range paths {
				codes[j] = append(codes[j], get(c, o.URL+p))
			}
		}
		if _, _, hits, _ := o.snapshot(); hits["/robots.txt"] != 1 {
			t.Errorf("file %d: robots.txt fetched %d times, want once (the second sidecar reads Redis)", i, hits["/robots.txt"])
		}
		if fmt.Sprint(codes[0]) != fmt.Sprint(codes[1]) {
			t.Errorf("file %d (%d KiB): the fetching sidecar answers %v, the one reading Redis %v, for %q", i, size>>10, codes[0], codes[1], paths)
		}
		if codes[0][1] != http.StatusForbidden || codes[0][0] != http.StatusOK {
			t.Errorf("file %d: /page %d, /secret %d; want 200 and 403", i, codes[0][0], codes[0][1])
		}
		t.Logf("file %d (%d KiB): both sidecars answer %v", i, size>>10, codes[0])
	}

	// Hostile values.
	garbage := make([]byte, 64<<10)
	for i := range garbage {
		garbage[i] = byte(rand.IntN(256))
	}
	values := map[string]string{
		"garbled":          string(garbage),
		"garbled deflate":  "v2 0 200\n" + string(garbage),
		"zero bomb":        deflateBomb(t, "zero-bomb", "\x00"),
		"rule bomb":        deflateBomb(t, "rule-bomb", "Disallow: /*a*b*c*d*e*f*g*h*\n"),
		"unknown version":  "v9 0 200\n",
		"header only":      "v2 0 200\n",
		"allow everything": "v2 1 404\n", // Redis is a trust boundary: this one is obeyed, see below
	}
	for name, v := range values {
		t.Logf("%s: %d bytes in Redis", name, len(v))
	}
	for round := range 3 {
		var rwg sync.WaitGroup
		for name, v := range values {
			o := newOrigin(t, robotsPrivate, 0, false)
			if err := rdb.Set(t.Context(), key(o), v, time.Hour).Err(); err != nil {
				t.Fatal(err)
			}
			for j, c := range clients {
				rwg.Add(1)
				go func() {
					defer rwg.Done()
					page, private := get(c, o.URL+"/a"), get(c, o.URL+"/private/x")
					want := http.StatusForbidden
					if name == "allow everything" {
						want = http.StatusOK
					}
					if page != http.StatusOK || private != want {
						t.Errorf("round %d, %s, sidecar %d: /a %d, /private/x %d; want 200 and %d", round, name, j, page, private, want)
					}
				}()
			}
		}
		rwg.Wait()
	}
	stop()
	wg.Wait()

	for j, s := range cars {
		select {
		case err := <-s.exit:
			t.Fatalf("sidecar %d exited: %v", j, err)
		default:
		}
		if code, _ := s.adminGet(t, "/readyz"); code != 200 {
			t.Errorf("sidecar %d /readyz %d after the hostile values", j, code)
		}
		_, metrics := s.adminGet(t, "/metrics")
		for _, line := range strings.Split(metrics, "\n") {
			if strings.HasPrefix(line, "crawlpolite_panics_total") && !strings.HasSuffix(line, " 0") {
				t.Errorf("sidecar %d: panics recovered: %s", j, line)
			}
		}
		if strings.Contains(s.logs(), "panic") {
			t.Errorf("sidecar %d: panic in its log", j)
		}
	}
	t.Logf("peak RSS %.1f MiB (limit %d MiB)", float64(peak.Load())/(1<<20), hostileRSSLimit>>20)
	if peak.Load() > hostileRSSLimit {
		t.Errorf("peak RSS %.1f MiB, want at most %d MiB", float64(peak.Load())/(1<<20), hostileRSSLimit>>20)
	}
}
