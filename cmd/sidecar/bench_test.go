package main_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
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

	// The sidecar as injected runs with GOMAXPROCS from its CPU limit (1 by default): one P, so no
	// idle thread spins looking for work and hand-offs between goroutines stay on one thread.
	one, two := []string{"GOMAXPROCS=1"}, []string{"GOMAXPROCS=2"}
	tp := startTinyproxy(t)
	bare := startBareProxy(t)
	local := startSidecar(t, one, "--policy-file="+pol)
	local2 := startSidecar(t, two, "--policy-file="+pol)
	shared := startSidecar(t, one, "--policy-file="+pol, "--redis=redis://"+rs.Addr)
	rows := []*benchRow{
		{name: "direct"},
		{name: "tinyproxy 1.11", proxy: tp.addr, pid: tp.pid},
		{name: "bare Go ReverseProxy", proxy: bare.addr, pid: bare.pid},
		{name: "sidecar, in-process", proxy: local.proxy, pid: local.cmd.Process.Pid},
		{name: "  same, GOMAXPROCS=2", proxy: local2.proxy, pid: local2.cmd.Process.Pid},
		{name: "sidecar, Redis", proxy: shared.proxy, pid: shared.cmd.Process.Pid},
	}
	direct, tiny, floor, loc, red := rows[0], rows[1], rows[2], rows[3], rows[5]
	red.calls = func() int64 { return redisCalls(t, rdb) }
	red.serverCPU = func() time.Duration { return redisCPU(t, rdb) }
	for _, r := range rows {
		r.throughput(t, target, dur)
	}
	// Added latency is measured without queueing (one connection, one request at a time), in
	// rounds that visit every row in turn, so a slow spell of the machine does not favour one row.
	const rounds = 3
	round := max(time.Second, (dur / rounds).Round(time.Second)) // wrk takes whole seconds
	for range rounds {
		for _, r := range rows {
			r.latency(t, target, round)
		}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "\nproxy benchmark: one small response; req/s and CPU/req under wrk -t1 -c%d -d%v;\n", wrkConns, dur)
	fmt.Fprintf(&b, "p50/p99 under -c1, the median of %d rounds of %v; the origin, wrk, Redis and the proxy share %d cores\n",
		rounds, round, runtime.NumCPU())
	fmt.Fprintf(&b, "%-22s %10s %9s %9s %12s %12s %10s\n", "", "req/s", "p50 (c1)", "p99 (c1)", "CPU/req", "Redis/req", "p50 added")
	for _, r := range rows {
		cpu, rc, added := "-", "-", "-"
		if r.cpu > 0 {
			cpu = fmt.Sprintf("%.1fus", r.cpu.Seconds()*1e6/float64(r.requests))
		}
		if r.redisPerReq > 0 {
			rc = fmt.Sprintf("%.2f", r.redisPerReq)
		}
		if r != direct {
			added = r.added(direct).String()
		}
		fmt.Fprintf(&b, "%-22s %10.0f %9v %9v %12s %12s %10s\n", r.name, r.rps, median(r.p50), median(r.p99), cpu, rc, added)
	}
	cpuPer := func(r *benchRow) float64 { return r.cpu.Seconds() / float64(r.requests) }
	fmt.Fprintf(&b, "in-process vs tinyproxy: throughput %.2fx (goal >= 1), CPU/request %.2fx (goal <= 0.7)\n",
		loc.rps/tiny.rps, cpuPer(loc)/cpuPer(tiny))
	fmt.Fprintf(&b, "Redis vs tinyproxy: throughput %.2fx (goal >= 1.5, met %v), CPU/request %.2fx (goal <= 0.5, met %v); redis-server CPU/request %.1fus\n",
		red.rps/tiny.rps, red.rps/tiny.rps >= 1.5, cpuPer(red)/cpuPer(tiny), cpuPer(red)/cpuPer(tiny) <= 0.5,
		red.redisCPU.Seconds()*1e6/float64(red.requests))
	fmt.Fprintf(&b, "p50 added over direct: in-process %v (goal < 300us), Redis %v, tinyproxy %v, bare Go ReverseProxy %v\n",
		loc.added(direct), red.added(direct), tiny.added(direct), floor.added(direct))
	fmt.Fprintf(&b, "Redis round trips per request %.2f: the acquire on the critical path, the release after the response\n", red.redisPerReq)
	t.Log(b.String())
}

const wrkConns = 16

type benchRow struct {
	name        string
	proxy       string // "" for direct
	pid         int    // the proxy process, whose CPU time is measured; 0 for none
	rps         float64
	requests    int64
	cpu         time.Duration // the proxy process's user+system time during the throughput run
	redisPerReq float64
	p50, p99    []time.Duration // one per latency round
	calls       func() int64    // Redis calls so far, for the row that uses Redis
	serverCPU   func() time.Duration
	redisCPU    time.Duration // redis-server's CPU time during the throughput run
}

// throughput loads target through the row's proxy with wrkConns connections for d.
func (r *benchRow) throughput(t *testing.T, target string, d time.Duration) {
	t.Helper()
	var calls0 int64
	out := r.wrk(t, target, d, wrkConns, func() {
		r.cpu = cpuTime(t, r.pid)
		if r.calls != nil {
			calls0 = r.calls()
		}
		if r.serverCPU != nil {
			r.redisCPU = r.serverCPU()
		}
	})
	r.cpu = cpuTime(t, r.pid) - r.cpu
	if r.serverCPU != nil {
		r.redisCPU = r.serverCPU() - r.redisCPU
	}
	r.rps, _ = strconv.ParseFloat(match(t, out, `Requests/sec:\s+([\d.]+)`), 64)
	r.requests, _ = strconv.ParseInt(match(t, out, `(\d+) requests in`), 10, 64)
	if r.calls != nil {
		r.redisPerReq = float64(r.calls()-calls0) / float64(r.requests)
	}
}

// latency records one round's p50 and p99 with one connection.
func (r *benchRow) latency(t *testing.T, target string, d time.Duration) {
	t.Helper()
	out := r.wrk(t, target, d, 1, func() {})
	r.p50 = append(r.p50, wrkDuration(t, match(t, out, `(?m)^\s+50%\s+(\S+)`)))
	r.p99 = append(r.p99, wrkDuration(t, match(t, out, `(?m)^\s+99%\s+(\S+)`)))
}

// added is the median over rounds of the p50 this row adds to direct's in the same round.
func (r *benchRow) added(direct *benchRow) time.Duration {
	d := make([]time.Duration, len(r.p50))
	for i := range d {
		d[i] = r.p50[i] - direct.p50[i]
	}
	return median(d)
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// wrk runs wrk against target through the row's proxy, after a warm-up (connections, the
// robots.txt cache), and returns its output. measured is called between the two.
func (r *benchRow) wrk(t *testing.T, target string, d time.Duration, conns int, measured func()) string {
	t.Helper()
	addr := strings.TrimPrefix(target, "http://")
	addr = addr[:strings.Index(addr, "/")]
	connectTo, path := "http://"+addr, "/page"
	if r.proxy != "" {
		connectTo, path = "http://"+r.proxy, target // absolute-form, as to a proxy
	}
	script := filepath.Join(t.TempDir(), "abs.lua")
	if err := os.WriteFile(script, []byte(fmt.Sprintf("wrk.path = %q\nwrk.headers[\"Host\"] = %q\nwrk.headers[\"User-Agent\"] = \"benchbot/1.0\"\n", path, addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = exec.Command("wrk", "-t1", "-c4", "-d1s", "-s", script, connectTo).Run()
	measured()
	out, err := exec.Command("wrk", "-t1", fmt.Sprintf("-c%d", conns), fmt.Sprintf("-d%ds", max(1, int(d.Seconds()))), "--latency", "-s", script, connectTo).CombinedOutput()
	if err != nil {
		t.Fatalf("wrk: %v\n%s", err, out)
	}
	if errs := regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`).FindStringSubmatch(string(out)); errs != nil {
		t.Errorf("%s: %s non-2xx responses", r.name, errs[1])
	}
	return string(out)
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
	info, err := rdb.Info(t.Context(), "commandstats").Result()
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

// redisCPU is redis-server's CPU time so far (user+system, INFO cpu).
func redisCPU(t *testing.T, rdb *redis.Client) time.Duration {
	t.Helper()
	info, err := rdb.Info(t.Context(), "cpu").Result()
	if err != nil {
		t.Fatal(err)
	}
	var s float64
	for _, m := range regexp.MustCompile(`used_cpu_(?:sys|user):([\d.]+)`).FindAllStringSubmatch(info, -1) {
		s += must(strconv.ParseFloat(m[1], 64))
	}
	return time.Duration(s * float64(time.Second))
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// startBareProxy builds and starts testdata/bareproxy, the floor of a Go forward proxy (GOMAXPROCS=1,
// as the sidecar).
func startBareProxy(t *testing.T) proc {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bareproxy")
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/bareproxy").CombinedOutput(); err != nil {
		t.Fatalf("building bareproxy: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{"GOMAXPROCS=1"}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return proc{addr: strings.TrimSpace(addr), pid: cmd.Process.Pid}
}

// proc is a baseline proxy process.
type proc struct {
	addr string
	pid  int
}

func startTinyproxy(t *testing.T) proc {
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
	return proc{addr: addr, pid: cmd.Process.Pid}
}
