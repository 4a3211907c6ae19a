package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/crawlpolite/crawlpolite/api/v1alpha1"
	"github.com/crawlpolite/crawlpolite/internal/inject"
	"github.com/crawlpolite/crawlpolite/internal/rxstamp"
)

// maxInFlightBetween is the most requests the origin had at once among those started in [from, to).
func maxInFlightBetween(v []visit, from, to time.Time) int {
	m := 0
	for _, x := range v {
		if !x.Start.Before(from) && x.Start.Before(to) {
			m = max(m, x.InFlight)
		}
	}
	return m
}

// TestPolicyChange: a CrawlPolicy edit reaches every sidecar (controller, ConfigMap, the kubelet's
// volume refresh, the sidecar's reload) and the origin sees the new limit; the time from the edit
// to the first request beyond the old limit is reported.
func TestPolicyChange(t *testing.T) {
	e := startEnv(t)
	ctx := t.Context()
	o := startOrigin(t, e.ca, &origin{Name: "p (limit 1, then 3)", Page: 200 * time.Millisecond})
	cp := &v1alpha1.CrawlPolicy{ObjectMeta: metav1.ObjectMeta{Name: "change"}, Spec: v1alpha1.CrawlPolicySpec{Rules: []v1alpha1.Rule{{
		Hosts: []v1alpha1.HostPattern{v1alpha1.HostPattern(o.Host)}, MaxConcurrency: ptr(int32(1)), MinDelay: dur("10ms")}}}}
	must(t, e.c.Create(ctx, cp))
	e.policySeen(t, "change", 1)
	crawl := 14 * time.Second
	for i := range 2 {
		must(t, e.c.Create(ctx, crawlerPod("crawl", fmt.Sprintf("crawler-%d", i), []string{o.URL("/a"), o.URL("/b")}, 4, crawl, nil)))
	}
	runs := []*podRun{e.kubelet.pod(t, "crawl", "crawler-0"), e.kubelet.pod(t, "crawl", "crawler-1")}
	time.Sleep(4 * time.Second)
	must(t, e.c.Get(ctx, client.ObjectKey{Name: "change"}, cp))
	cp.Spec.Rules[0].MaxConcurrency = ptr(int32(3))
	edit := time.Now()
	must(t, e.c.Update(ctx, cp))
	for _, r := range runs {
		r.WaitApps(t, crawl+time.Minute)
	}
	v := o.Visits()
	if m := maxInFlightBetween(v, time.Time{}, edit); m > 1 {
		t.Errorf("before the edit: %d in flight, limit 1", m)
	}
	if m := maxInFlightBetween(v, edit, time.Now()); m > 3 {
		t.Errorf("after the edit: %d in flight, limit 3", m)
	}
	var seen time.Duration
	for _, x := range v {
		if x.Start.After(edit) && x.InFlight > 1 {
			seen = x.Start.Sub(edit)
			break
		}
	}
	if seen == 0 {
		t.Fatal("the origin never saw the new limit")
	}
	rep := section("Policy change", "2 pods, 4 workers each on one host; its CrawlPolicy's maxConcurrency edited from 1 to 3 mid-crawl")
	rep.row("edit to the origin seeing it", fmt.Sprintf("%v (controller, ConfigMap, volume refresh every 500 ms here, the sidecar's 2 s reload check)", seen.Round(10*time.Millisecond)))
	rep.inFlight(judged{Name: o.Name, Limit: 3, Visits: v})
	rep.verdict(t)
	t.Logf("the origin saw the new limit %v after the edit", seen)
}

var createDryRun = client.CreateOptions{DryRun: []string{metav1.DryRunAll}}

// TestFaults: with the webhook down labelled pods are refused and others created; a Redis restart
// that loses its data mid-crawl gives crawlers 503s (fail closed), then the crawl recovers, and no
// key is left without a TTL.
func TestFaults(t *testing.T) {
	e := startEnv(t)
	ctx := t.Context()

	// The webhook down (failurePolicy Fail).
	e.webhook.kill()
	err := e.c.Create(ctx, crawlerPod("crawl", "while-down", nil, 1, time.Second, nil))
	if err == nil || !apierrors.IsInternalError(err) && !strings.Contains(err.Error(), "inject.crawlpolite.io") {
		t.Errorf("a labelled pod with the webhook down: want a refusal, got %v", err)
	}
	plain := crawlerPod("other-ns-less", "plain", nil, 1, time.Second, nil)
	plain.Namespace, plain.Labels = "default", nil
	if err := e.c.Create(ctx, plain); err != nil {
		t.Errorf("an unlabelled pod with the webhook down: %v", err)
	}
	e.startWebhook(t)
	waitFor(t, "the webhook back", 30*time.Second, func() bool {
		p := crawlerPod("crawl", "probe", nil, 1, time.Millisecond, nil)
		if e.c.Create(ctx, p, &createDryRun) != nil {
			return false
		}
		return len(p.Spec.InitContainers) == 1 && p.Spec.InitContainers[0].Name == inject.ContainerName
	})

	// Redis restarts, losing its data, mid-crawl.
	o := startOrigin(t, e.ca, &origin{Name: "r (limit 2)", Page: 20 * time.Millisecond})
	crawl := 10 * time.Second
	for i := range 2 {
		must(t, e.c.Create(ctx, crawlerPod("crawl", fmt.Sprintf("crawler-%d", i), []string{o.URL("/a")}, 4, crawl, nil)))
	}
	runs := []*podRun{e.kubelet.pod(t, "crawl", "crawler-0"), e.kubelet.pod(t, "crawl", "crawler-1")}
	time.Sleep(3 * time.Second)
	down := time.Now()
	e.redis.Restart(t, time.Second)
	up := time.Now()
	var all []result
	for _, r := range runs {
		r.WaitApps(t, crawl+time.Minute)
		all = append(all, results(t, r.Apps[0])...)
	}
	var failed, okAfter int
	var firstOK time.Duration
	for _, r := range all {
		at := time.Unix(0, r.Start)
		switch {
		case r.Status == 503:
			failed++
			if !strings.Contains(r.ProxyStatus, "error=") {
				t.Errorf("a 503 without Proxy-Status: %+v", r)
			}
		case r.Status == 200 && at.After(up):
			okAfter++
			if firstOK == 0 || at.Sub(up) < firstOK {
				firstOK = at.Sub(up)
			}
		case r.Status != 200:
			t.Errorf("crawler: %+v", r)
		}
	}
	if failed == 0 {
		t.Error("no 503 while Redis was down: did the sidecars fail closed?")
	}
	if okAfter == 0 {
		t.Error("no success after Redis came back")
	}
	if m := o.Visits(); len(m) > 0 {
		if x := maxInFlightBetween(m, time.Time{}, time.Now()); x > 4 {
			t.Errorf("%d in flight at the origin (limit 2, at most one limit extra after Redis lost its grants)", x)
		}
	}
	// No key without a TTL once the crawl is over.
	rdb := redis.NewClient(&redis.Options{Addr: e.redis.Addr, Password: redisPassword})
	defer rdb.Close()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if ttl, err := rdb.PTTL(ctx, k).Result(); err == nil && ttl == -1 { // -1 ns: no expiry (-2: gone since KEYS)
			t.Errorf("key %q has no TTL (%v, %v)", k, ttl, err)
		}
	}
	rep := section("Faults", "the webhook killed; then Redis restarted with its data lost (1 s down) under 2 pods x 4 workers")
	rep.row("webhook down", "labelled pod refused, unlabelled pod created")
	rep.row("Redis down", fmt.Sprintf("%d answers 503 with Proxy-Status (fail closed); first success %v after it was back; %d keys left, every one with a TTL",
		failed, firstOK.Round(time.Millisecond), len(keys)))
	rep.timeline("redis-restart", all, map[string]time.Time{"Redis down": down, "Redis up": up})
	rep.verdict(t)
}

// TestJobs: with native sidecars the crawler exits and the sidecar stops on the kubelet's SIGTERM
// with status 0 (the Job's pod completes); in legacy mode the crawler's authenticated
// /quitquitquit stops it.
func TestJobs(t *testing.T) {
	e := startEnv(t)
	ctx := t.Context()
	o := startOrigin(t, e.ca, &origin{Name: "j", Page: 10 * time.Millisecond})
	must(t, e.c.Create(ctx, crawlerPod("batch", "native-job", []string{o.URL("/a")}, 1, 2*time.Second, nil)))
	must(t, e.c.Create(ctx, crawlerPod("batch", "legacy-job", []string{o.URL("/b")}, 1, 2*time.Second,
		map[string]string{inject.AnnotationMode: "legacy"}, "--quit=127.0.0.1:15081")))
	native, legacy := e.kubelet.pod(t, "batch", "native-job"), e.kubelet.pod(t, "batch", "legacy-job")
	if !native.Native || legacy.Native {
		t.Fatalf("modes: native-job native=%v, legacy-job native=%v", native.Native, legacy.Native)
	}
	for _, r := range []*podRun{native, legacy} {
		r.WaitApps(t, time.Minute)
		if _, err := r.Apps[0].exited(); err != nil {
			t.Errorf("%s: crawler: %v\n%s", r.Pod.Name, err, r.Apps[0].logs())
		}
		select {
		case err := <-r.SidecarExit:
			if err != nil {
				t.Errorf("%s: sidecar exited with %v", r.Pod.Name, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("%s: the sidecar is still running after the crawler exited", r.Pod.Name)
		}
		if n := len(results(t, r.Apps[0])); n == 0 {
			t.Errorf("%s: the crawler fetched nothing", r.Pod.Name)
		}
	}
	rep := section("Jobs", "a native-sidecar Job and a legacy-mode Job, each crawling for 2 s")
	rep.row("native", "the crawler exited 0; the sidecar stopped on SIGTERM with status 0 (the pod completes)")
	rep.row("legacy", "the crawler's POST /quitquitquit with the token from the shared volume stopped the sidecar with status 0")
	rep.verdict(t)
}

// TestKilledSidecar: a sidecar SIGKILLed while its request holds the host's only slot; the other
// pod's request reaches the origin once the killed one's lease runs out: never two in flight, and
// not later than the lease (the sidecar's default, 30 s) after the kill. Full form only.
func TestKilledSidecar(t *testing.T) {
	if !full() {
		t.Skip("full form (make e2e): waits out a 30 s lease")
	}
	e := startEnv(t)
	ctx := t.Context()
	o := startOrigin(t, e.ca, &origin{Name: "k (limit 1, 2 s pages)", Page: 2 * time.Second})
	cp := &v1alpha1.CrawlPolicy{ObjectMeta: metav1.ObjectMeta{Name: "kill"}, Spec: v1alpha1.CrawlPolicySpec{Rules: []v1alpha1.Rule{{
		Hosts: []v1alpha1.HostPattern{v1alpha1.HostPattern(o.Host)}, MaxConcurrency: ptr(int32(1)), MinDelay: dur("10ms")}}}}
	must(t, e.c.Create(ctx, cp))
	e.policySeen(t, "kill", 1)
	must(t, e.c.Create(ctx, crawlerPod("crawl", "victim", []string{o.URL("/v")}, 1, 90*time.Second, nil)))
	victim := e.kubelet.pod(t, "crawl", "victim")
	waitFor(t, "the victim's request at the origin", 30*time.Second, func() bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		return o.inFlight > 0
	})
	must(t, e.c.Create(ctx, crawlerPod("crawl", "survivor", []string{o.URL("/s")}, 1, 90*time.Second, nil)))
	e.kubelet.pod(t, "crawl", "survivor")
	time.Sleep(time.Second) // the survivor queues behind the victim's slot
	killed := time.Now()
	victim.Sidecar.kill()
	var freed time.Duration
	waitFor(t, "the survivor's request at the origin", 45*time.Second, func() bool {
		for _, v := range o.Visits() {
			if v.Path == "/s" {
				freed = v.Start.Sub(killed)
				return true
			}
		}
		return false
	})
	if freed > 32*time.Second {
		t.Errorf("the slot was freed %v after the kill (lease 30 s)", freed)
	}
	if m := maxInFlightBetween(o.Visits(), time.Time{}, time.Now()); m > 1 {
		t.Errorf("%d in flight at the origin, limit 1", m)
	}
	t.Logf("the slot was freed %v after the kill", freed)
	rep := section("Killed sidecar", "a sidecar SIGKILLed while its request holds the only slot of a host (limit 1); another pod waits")
	rep.row("slot freed", fmt.Sprintf("%v after the kill (bound: the 30 s lease; a turn handed over from the queue first holds a waiter TTL, 3 s, until its first refresh)", freed.Round(10*time.Millisecond)))
	rep.verdict(t)
}

// scaleOrigin answers for every 127.x.y.z on one port (a wildcard listener), recording per host.
type scaleOrigin struct {
	mu    sync.Mutex
	hosts map[string]*hostSeen
}

type hostSeen struct {
	inFlight, max, requests int
	last                    time.Time
	minGap                  time.Duration
}

func (s *scaleOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now, _ := rxstamp.ArrivedAt(r)
	s.mu.Lock()
	h := s.hosts[r.Host]
	if h == nil {
		h = &hostSeen{minGap: time.Hour}
		s.hosts[r.Host] = h
	}
	h.inFlight++
	h.requests++
	h.max = max(h.max, h.inFlight)
	if !h.last.IsZero() {
		h.minGap = min(h.minGap, now.Sub(h.last))
	}
	h.last = now
	s.mu.Unlock()
	if r.URL.Path != "/robots.txt" {
		_, _ = w.Write([]byte("page\n"))
	} else {
		http.NotFound(w, r)
	}
	s.mu.Lock()
	h.inFlight--
	s.mu.Unlock()
}

// procCPU is a process's user+system CPU time so far.
func procCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond // USER_HZ 100
}

// procRSS is a process's resident set in bytes.
func procRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// redisStats sums INFO fields over the servers (every master and replica).
func redisStats(t *testing.T, addrs []string, password string) (commands int64, cpu time.Duration, memory int64) {
	t.Helper()
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a, Password: password})
		info, err := c.Info(t.Context(), "stats", "cpu", "memory").Result()
		_ = c.Close()
		if err != nil {
			t.Fatalf("INFO %s: %v", a, err)
		}
		for _, line := range strings.Split(info, "\r\n") {
			k, v, _ := strings.Cut(line, ":")
			switch k {
			case "total_commands_processed":
				n, _ := strconv.ParseInt(v, 10, 64)
				commands += n
			case "used_cpu_sys", "used_cpu_user":
				f, _ := strconv.ParseFloat(v, 64)
				cpu += time.Duration(f * float64(time.Second))
			case "used_memory":
				n, _ := strconv.ParseInt(v, 10, 64)
				memory += n
			}
		}
	}
	return commands, cpu, memory
}

// TestScale: 1,000 hosts crawled by 8 pods at once, on one Redis and on a Redis Cluster: every host
// at most its limit in flight and its delay apart; Redis commands/s, Redis and sidecar CPU per
// request, memory per active host; no key left without a TTL, and none for a host once idle.
// Full form only.
func TestScale(t *testing.T) {
	if !full() {
		t.Skip("full form (make e2e)")
	}
	for _, cluster := range []bool{false, true} {
		name := map[bool]string{false: "one Redis", true: "Redis Cluster"}[cluster]
		t.Run(strings.ReplaceAll(name, " ", "-"), func(t *testing.T) { scale(t, name, cluster) })
	}
}

func scale(t *testing.T, name string, cluster bool) {
	const hosts, pods = 1000, 8
	values := []string{"--set", "sidecar.allowCIDRs={127.0.0.0/8}", "--set", "policy.defaults.maxConcurrency=1", "--set", "policy.defaults.minDelay=500ms"}
	var e *env
	var addrs []string
	password := ""
	if cluster {
		e = startClusterEnv(t, values...)
		addrs = e.cluster.Addrs()
	} else {
		e = startEnv(t, values...)
		addrs, password = []string{e.redis.Addr}, redisPassword
	}
	ctx := t.Context()
	ln, err := net.Listen("tcp", ":0") // every 127.x.y.z
	must(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	so := &scaleOrigin{hosts: map[string]*hostSeen{}}
	srv := &http.Server{Handler: so, ReadHeaderTimeout: 10 * time.Second, ConnContext: rxstamp.ConnContext}
	go func() { _ = srv.Serve(rxstamp.Listener(ln)) }()
	t.Cleanup(func() { _ = srv.Close() })
	// Every host is crawled by two pods (pods i and i+4 share a quarter of the hosts), one worker
	// each: 1,000 hosts busy at once, each contended across pods.
	urls := make([][]string, pods)
	for i := range hosts {
		u := fmt.Sprintf("http://127.0.%d.%d:%d/p", 2+i/250, 1+i%250, port)
		urls[i%(pods/2)] = append(urls[i%(pods/2)], u)
		urls[i%(pods/2)+pods/2] = append(urls[i%(pods/2)+pods/2], u)
	}
	crawl := 20 * time.Second
	for i := range pods {
		must(t, e.c.Create(ctx, crawlerPod("crawl", fmt.Sprintf("scale-%d", i), urls[i], 1, crawl, nil)))
	}
	var runs []*podRun
	for i := range pods {
		runs = append(runs, e.kubelet.pod(t, "crawl", fmt.Sprintf("scale-%d", i)))
	}
	cmd0, rcpu0, mem0 := redisStats(t, addrs, password)
	var scpu0 time.Duration
	var rss0 int64
	for _, r := range runs {
		scpu0 += procCPU(t, r.Sidecar.cmd.Process.Pid)
		rss0 += procRSS(r.Sidecar.cmd.Process.Pid)
	}
	start := time.Now()
	time.Sleep(crawl - 2*time.Second) // measured while every host is busy
	elapsed := time.Since(start)
	cmd1, rcpu1, mem1 := redisStats(t, addrs, password)
	var scpu1 time.Duration
	var rss1 int64
	for _, r := range runs {
		scpu1 += procCPU(t, r.Sidecar.cmd.Process.Pid)
		rss1 += procRSS(r.Sidecar.cmd.Process.Pid)
	}
	so.mu.Lock()
	served := 0
	for _, h := range so.hosts {
		served += h.requests
	}
	so.mu.Unlock()
	for _, r := range runs {
		r.WaitApps(t, crawl+2*time.Minute)
	}
	so.mu.Lock()
	total, worstGap, worstFlight := 0, time.Hour, 0
	for _, h := range so.hosts {
		total += h.requests
		worstFlight = max(worstFlight, h.max)
		if h.requests > 1 {
			worstGap = min(worstGap, h.minGap)
		}
	}
	seen := len(so.hosts)
	so.mu.Unlock()
	if seen < hosts {
		t.Errorf("%d of %d hosts reached", seen, hosts)
	}
	if worstFlight > 1 {
		t.Errorf("a host had %d in flight, limit 1", worstFlight)
	}
	if worstGap < 500*time.Millisecond-slack {
		t.Errorf("a host saw starts %v apart, delay 500ms", worstGap)
	}
	// Keys: every one with a TTL; once the hosts are idle the semaphore's keys go (the robots.txt
	// cache, crawlpolite:robots:*, is meant to stay for its own TTL).
	keys := func() (n int, noTTL []string) {
		for _, a := range addrs {
			c := redis.NewClient(&redis.Options{Addr: a, Password: password})
			if role, _ := c.Do(ctx, "ROLE").Slice(); len(role) > 0 && role[0] != "master" {
				_ = c.Close()
				continue
			}
			ks, err := c.Keys(ctx, "*").Result()
			must(t, err)
			for _, k := range ks {
				// PTTL is -1 (as a Duration of -1 ns) for a key without expiry, -2 for one gone since KEYS.
				if ttl, err := c.PTTL(ctx, k).Result(); err == nil && ttl == -1 {
					noTTL = append(noTTL, k)
				}
				if !strings.HasPrefix(k, "crawlpolite:robots:") {
					n++
				}
			}
			_ = c.Close()
		}
		return n, noTTL
	}
	atEnd, noTTL := keys()
	if len(noTTL) > 0 {
		t.Errorf("%d keys without a TTL: %v", len(noTTL), noTTL[:min(5, len(noTTL))])
	}
	idle := time.Now()
	var left int
	waitFor(t, "the idle hosts' keys to expire", 2*time.Minute, func() bool {
		left, _ = keys()
		return left <= 3 // the active-host registry: three keys under one hash tag, kept for its window
	})
	rate := float64(served) / elapsed.Seconds()
	rep := section("Scale: "+name, fmt.Sprintf("%d hosts (limit 1, 500 ms) crawled by %d pods at once, each host by two pods, one worker per host each, %v", hosts, pods, crawl))
	rep.row("origin", fmt.Sprintf("%d requests, %.0f req/s; %d hosts reached; worst host: %d in flight, smallest gap %v", total, rate, seen, worstFlight, worstGap.Round(time.Millisecond)))
	rep.row("Redis", fmt.Sprintf("%.0f commands/s (%.1f per request), %.0f us CPU per request, %.0f bytes per active host",
		float64(cmd1-cmd0)/elapsed.Seconds(), float64(cmd1-cmd0)/float64(served), float64(rcpu1-rcpu0)/float64(time.Microsecond)/float64(served), float64(mem1-mem0)/hosts))
	rep.row("sidecars", fmt.Sprintf("%.0f us CPU per request; RSS %d MiB per sidecar during the crawl, %d KiB per active host at most (RSS / hosts), %d MiB when the last pod had started",
		float64(scpu1-scpu0)/float64(time.Microsecond)/float64(served), rss1/pods>>20, rss1/pods/hosts>>10, rss0/pods>>20))
	rep.row("keys", fmt.Sprintf("%d at the end, every one with a TTL; %d left %v after the crawl", atEnd, left, time.Since(idle).Round(time.Second)))
	rep.verdict(t)
	for _, r := range rep.Rows {
		t.Logf("%s: %s", r[0], r[1])
	}
}
