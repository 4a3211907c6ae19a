package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/crawlpolite/crawlpolite/api/v1alpha1"
	"github.com/crawlpolite/crawlpolite/internal/inject"
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
	ctx := context.Background()
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
	must(t, e.c.Get(ctx, metav1ObjectKey("change"), cp))
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

func metav1ObjectKey(name string) client.ObjectKey { return client.ObjectKey{Name: name} }

var createDryRun = client.CreateOptions{DryRun: []string{metav1.DryRunAll}}

// TestFaults: with the webhook down labelled pods are refused and others created; a Redis restart
// that loses its data mid-crawl gives crawlers 503s (fail closed), then the crawl recovers, and no
// key is left without a TTL.
func TestFaults(t *testing.T) {
	e := startEnv(t)
	ctx := context.Background()

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
		if ttl, err := rdb.PTTL(ctx, k).Result(); err != nil || ttl < 0 {
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
	ctx := context.Background()
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
