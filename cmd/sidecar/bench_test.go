package main_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crawlpolite/crawlpolite/internal/redistest"
)

// TestProxyBenchmark compares, on one load from wrk, requests/s, p50/p99 latency and the proxy's CPU
// time per request: direct to the origin, through tinyproxy (Debian), and through the sidecar with
// its in-process semaphore and with Redis, the politeness path on (policy lookup, robots.txt cache
// hit, acquire and release) but out of the way (limits far above the load, no delay). It is a
// benchmark, run by `make bench` (CRAWLPOLITE_BENCH=1), not a test.
func TestProxyBenchmark(t *testing.T) {
	if os.Getenv("CRAWLPOLITE_BENCH") == "" {
		t.Skip("a benchmark: run with CRAWLPOLITE_BENCH=1 (make bench)")
	}
	for _, bin := range []string{"wrk", "tinyproxy"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not installed (make bench installs it): %v", bin, err)
		}
	}
	dur := 10 * time.Second
	if d, err := time.ParseDuration(os.Getenv("CRAWLPOLITE_BENCH_DURATION")); err == nil {
		dur = d
	}
	origin := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/robots.txt" {
			_, _ = w.Write([]byte("User-agent: *\nDisallow: /private\n"))
			return
		}
		_, _ = w.Write([]byte("hello, crawler\n"))
	})}
	ol, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = origin.Serve(ol) }()
	t.Cleanup(func() { _ = origin.Close() })
	target := "http://" + ol.Addr().String() + "/page"

	pol := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(pol, []byte("defaults:\n  maxConcurrency: 10000\n  minDelay: 0s\n  robots: enforce\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rs := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	t.Cleanup(func() { _ = rdb.Close() })

	var rows []benchRow
	rows = append(rows, runWrk(t, "direct", "", target, dur, 0))
	tp := startTinyproxy(t)
	rows = append(rows, runWrk(t, "tinyproxy 1.11", tp.addr, target, dur, tp.pid))
	local := startSidecar(t, nil, "--policy-file="+pol)
	rows = append(rows, runWrk(t, "sidecar, in-process", local.proxy, target, dur, local.cmd.Process.Pid))
	shared := startSidecar(t, nil, "--policy-file="+pol, "--redis=redis://"+rs.Addr)
	var calls0, calls int64
	row := runWrk(t, "sidecar, Redis", shared.proxy, target, dur, shared.cmd.Process.Pid,
		func() { calls0 = redisCalls(t, rdb) }, func() { calls = redisCalls(t, rdb) - calls0 })
	row.redisPerReq = float64(calls) / float64(row.requests)
	rows = append(rows, row)

	var b strings.Builder
	fmt.Fprintf(&b, "\nproxy benchmark: one small response; req/s and CPU/req under wrk -t1 -c%d -d%v, latency under -c1;\n", wrkConns, dur)
	fmt.Fprintf(&b, "the origin, wrk, Redis and the proxy share 2 cores\n")
	fmt.Fprintf(&b, "%-22s %10s %9s %9s %12s %12s\n", "", "req/s", "p50 (c1)", "p99 (c1)", "CPU/req", "Redis/req")
	for _, r := range rows {
		cpu, rc := "-", "-"
		if r.cpu > 0 {
			cpu = fmt.Sprintf("%.1fus", r.cpu.Seconds()*1e6/float64(r.requests))
		}
		if r.redisPerReq > 0 {
			rc = fmt.Sprintf("%.2f", r.redisPerReq)
		}
		fmt.Fprintf(&b, "%-22s %10.0f %9v %9v %12s %12s\n", r.name, r.rps, r.p50, r.p99, cpu, rc)
	}
	direct, tiny, loc, red := rows[0], rows[1], rows[2], rows[3]
	cpuPer := func(r benchRow) float64 { return r.cpu.Seconds() / float64(r.requests) }
	fmt.Fprintf(&b, "in-process vs tinyproxy: throughput %.2fx (goal >= 1), CPU/request %.2fx (goal <= 0.7)\n",
		loc.rps/tiny.rps, cpuPer(loc)/cpuPer(tiny))
	fmt.Fprintf(&b, "p50 added over direct: in-process %v (goal < 300us), Redis %v, tinyproxy %v\n",
		loc.p50-direct.p50, red.p50-direct.p50, tiny.p50-direct.p50)
	fmt.Fprintf(&b, "Redis round trips per request %.2f: the acquire on the critical path, the release after the response\n", red.redisPerReq)
	t.Log(b.String())
}

const wrkConns = 16

type benchRow struct {
	name        string
	rps         float64
	p50, p99    time.Duration
	requests    int64
	cpu         time.Duration // the proxy process's user+system time during the run
	redisPerReq float64
}

// runWrk loads target through proxy ("" for direct) and measures pid's CPU time meanwhile.
// around, when given, are called just before and just after the measured throughput run.
func runWrk(t *testing.T, name, proxy, target string, d time.Duration, pid int, around ...func()) benchRow {
	t.Helper()
	r := wrkRun(t, name, proxy, target, d, pid, wrkConns, around...)
	// Added latency is measured without queueing: one connection, one request at a time.
	one := wrkRun(t, name, proxy, target, d/2, 0, 1)
	r.p50, r.p99 = one.p50, one.p99
	return r
}

func wrkRun(t *testing.T, name, proxy, target string, d time.Duration, pid, conns int, around ...func()) benchRow {
	t.Helper()
	addr := strings.TrimPrefix(target, "http://")
	addr = addr[:strings.Index(addr, "/")]
	connectTo := "http://" + addr
	script := filepath.Join(t.TempDir(), "abs.lua")
	path := "/page"
	if proxy != "" {
		connectTo, path = "http://"+proxy, target // absolute-form, as to a proxy
	}
	if err := os.WriteFile(script, []byte(fmt.Sprintf("wrk.path = %q\nwrk.headers[\"Host\"] = %q\nwrk.headers[\"User-Agent\"] = \"benchbot/1.0\"\n", path, addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	// Warm up (connections, robots.txt cache), then measure.
	_ = exec.Command("wrk", "-t1", "-c4", "-d1s", "-s", script, connectTo).Run()
	cpu0 := cpuTime(t, pid)
	if len(around) == 2 {
		around[0]()
	}
	out, err := exec.Command("wrk", "-t1", fmt.Sprintf("-c%d", conns), fmt.Sprintf("-d%ds", max(1, int(d.Seconds()))), "--latency", "-s", script, connectTo).CombinedOutput()
	if err != nil {
		t.Fatalf("wrk: %v\n%s", err, out)
	}
	if len(around) == 2 {
		around[1]()
	}
	r := benchRow{name: name, cpu: cpuTime(t, pid) - cpu0}
	s := string(out)
	r.rps, _ = strconv.ParseFloat(match(t, s, `Requests/sec:\s+([\d.]+)`), 64)
	r.requests, _ = strconv.ParseInt(match(t, s, `(\d+) requests in`), 10, 64)
	r.p50 = wrkDuration(t, match(t, s, `(?m)^\s+50%\s+(\S+)`))
	r.p99 = wrkDuration(t, match(t, s, `(?m)^\s+99%\s+(\S+)`))
	if errs := regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`).FindStringSubmatch(s); errs != nil {
		t.Errorf("%s: %s non-2xx responses", name, errs[1])
	}
	return r
}

func match(t *testing.T, s, re string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no %q in wrk's output:\n%s", re, s)
	}
	return m[1]
}

// wrkDuration parses wrk's "250.00us", "1.20ms", "2.00s".
func wrkDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("wrk latency %q: %v", s, err)
	}
	return d
}

// cpuTime is a process's user+system time (and its reaped children's), from /proc; 0 for pid 0.
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	var ticks int64
	for _, i := range []int{11, 12, 13, 14} { // utime, stime, cutime, cstime (fields 14-17)
		n, _ := strconv.ParseInt(f[i], 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

// redisCalls is the number of requests Redis has answered that a proxied request could cause.
func redisCalls(t *testing.T, rdb *redis.Client) int64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	// Round trips, not the commands scripts run inside (which commandstats counts too): the script
	// calls. A robots.txt cache hit is local and costs none.
	var n int64
	for _, m := range regexp.MustCompile(`cmdstat_(evalsha|eval|evalsha_ro|eval_ro):calls=(\d+)`).FindAllStringSubmatch(info, -1) {
		n += must(strconv.ParseInt(m[2], 10, 64))
	}
	return n
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

type tinyproxy struct {
	addr string
	pid  int
}

func startTinyproxy(t *testing.T) tinyproxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	conf := filepath.Join(t.TempDir(), "tinyproxy.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("Port %d\nListen 127.0.0.1\nTimeout 600\nMaxClients 1000\nLogLevel Critical\nAllow 127.0.0.1\nUser nobody\nGroup nogroup\n", port)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("tinyproxy", "-d", "-c", conf)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waitFor(t, "tinyproxy", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	})
	return tinyproxy{addr: addr, pid: cmd.Process.Pid}
}
