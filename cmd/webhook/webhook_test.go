package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/crawlpolite/crawlpolite/api/v1alpha1"
	"github.com/crawlpolite/crawlpolite/internal/inject"
	"github.com/crawlpolite/crawlpolite/internal/kubetest"
	"github.com/crawlpolite/crawlpolite/internal/policy"
)

// cluster is a real kube-apiserver + etcd with the CRD and the MutatingWebhookConfiguration from
// config/ installed, and this manager serving them.
type cluster struct {
	c    client.Client
	stop func() error // stops the manager, returning what serve returned
}

func startCluster(t *testing.T, extraArgs ...string) *cluster {
	t.Helper()
	env := &envtest.Environment{
		CRDDirectoryPaths: []string{"../../config/crd/bases"},
		// The configuration users apply, not a copy: envtest points its service at the local server.
		WebhookInstallOptions: envtest.WebhookInstallOptions{Paths: []string{"../../config/webhook"}},
	}
	cfg := kubetest.Start(t, env)
	wio := env.WebhookInstallOptions
	opts, err := parseOptions(append([]string{
		"--namespace=crawlpolite-system", "--cert-mode=external", "--cert-dir=" + wio.LocalServingCertDir,
		"--webhook-host=" + wio.LocalServingHost, fmt.Sprintf("--webhook-port=%d", wio.LocalServingPort),
		"--metrics-bind-address=0", "--health-probe-bind-address=0", "--leader-elect=false",
		"--sidecar-image=registry.example/crawlpolite:test", "--no-proxy=10.0.0.0/24", "--log-level=error",
	}, extraArgs...))
	if err != nil {
		t.Fatal(err)
	}
	opts.skipNameValidation = true
	opts.Base = mustDoc(t, "defaults:\n  maxConcurrency: 2\n  minDelay: 1s\n")
	c := kubetest.Client(t, cfg, v1alpha1.AddToScheme)
	// Not t.Context(): the manager serves until its Cleanup below stops it, so it is still up while
	// the cleanups registered after it run.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, rest.CopyConfig(cfg), opts) }()
	var once bool
	stop := func() error {
		if once {
			return nil
		}
		once = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			return errors.New("manager did not stop within 30s")
		}
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	waitFor(t, "webhook server", func() bool {
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(wio.LocalServingHost, fmt.Sprint(wio.LocalServingPort)), time.Second)
		if err == nil {
			_ = conn.Close()
		}
		return err == nil
	})
	kubetest.Namespaces(t, c, "crawl", "other", "crawlpolite-system")
	return &cluster{c: c, stop: stop}
}

func mustDoc(t *testing.T, s string) policy.Document {
	t.Helper()
	d, err := policy.ParseDocument([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func d(s string) *v1alpha1.Duration { v := v1alpha1.Duration(s); return &v }

func n(v int32) *int32 { return &v }

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func pod(ns, name string, labelled bool, annotations map[string]string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: new(bool),
			Containers:                   []corev1.Container{{Name: "app", Image: "crawler:1"}},
		},
	}
	if labelled {
		p.Labels = map[string]string{inject.InjectLabel: "enabled"}
	}
	return p
}

func injected(p *corev1.Pod) bool {
	for _, c := range append(p.Spec.InitContainers, p.Spec.Containers...) {
		if c.Name == inject.ContainerName {
			return true
		}
	}
	return false
}

func envOf(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// TestWebhook: through the real API server, labelled pods get the sidecar (native: the server is
// 1.37), unlabelled ones and those in excluded namespaces do not, a bad annotation is denied with
// its message; and with the manager down, labelled pods are refused while others are not.
func TestWebhook(t *testing.T) {
	k := startCluster(t)
	ctx := t.Context()

	p := pod("crawl", "crawler", true, nil)
	if err := k.c.Create(ctx, p); err != nil {
		t.Fatalf("labelled pod: %v", err)
	}
	if len(p.Spec.InitContainers) != 1 || p.Spec.InitContainers[0].Name != inject.ContainerName ||
		p.Spec.InitContainers[0].RestartPolicy == nil || *p.Spec.InitContainers[0].RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Fatalf("labelled pod: want a native sidecar, got init containers %+v", p.Spec.InitContainers)
	}
	if p.Spec.InitContainers[0].Image != "registry.example/crawlpolite:test" {
		t.Errorf("sidecar image %q", p.Spec.InitContainers[0].Image)
	}
	app := p.Spec.Containers[0]
	if envOf(app, "HTTPS_PROXY") != "http://127.0.0.1:15080" || envOf(app, "NO_PROXY") != "10.0.0.0/24" {
		t.Errorf("app env %+v", app.Env)
	}
	if p.Annotations[inject.AnnotationStatus] == "" {
		t.Error("no status annotation")
	}

	plain := pod("crawl", "plain", false, nil)
	if err := k.c.Create(ctx, plain); err != nil || injected(plain) || len(plain.Spec.Containers[0].Env) != 0 {
		t.Errorf("unlabelled pod: err %v, injected %v", err, injected(plain))
	}
	own := pod("crawlpolite-system", "own", true, nil)
	if err := k.c.Create(ctx, own); err != nil || injected(own) {
		t.Errorf("pod in the manager's namespace: err %v, injected %v", err, injected(own))
	}

	err := k.c.Create(ctx, pod("crawl", "bad", true, map[string]string{inject.AnnotationMode: "sometimes"}))
	if err == nil || !strings.Contains(err.Error(), "crawlpolite.io/mode") || !strings.Contains(err.Error(), "auto, native or legacy") {
		t.Errorf("bad annotation: want a denial naming crawlpolite.io/mode and the values, got %v", err)
	}
	legacy := pod("other", "legacy", true, map[string]string{inject.AnnotationMode: "legacy"})
	if err := k.c.Create(ctx, legacy); err != nil || legacy.Spec.Containers[0].Name != inject.ContainerName {
		t.Errorf("legacy annotation: err %v, containers %+v", err, legacy.Spec.Containers)
	}

	if err := k.stop(); err != nil {
		t.Fatalf("manager: %v", err)
	}
	err = k.c.Create(ctx, pod("crawl", "while-down", true, nil))
	if err == nil || !apierrors.IsInternalError(err) && !strings.Contains(err.Error(), "inject.crawlpolite.io") {
		t.Errorf("labelled pod with the webhook down: want a refusal (failurePolicy Fail), got %v", err)
	}
	if err := k.c.Create(ctx, pod("crawl", "unrelated-while-down", false, nil)); err != nil {
		t.Errorf("unlabelled pod with the webhook down must not be affected: %v", err)
	}
}

// TestCrawlPolicyValidation: the API server itself rejects bad CrawlPolicies (OpenAPI and CEL).
func TestCrawlPolicyValidation(t *testing.T) {
	k := startCluster(t)
	ctx := t.Context()
	for _, c := range []struct {
		name string
		rule v1alpha1.Rule
		want string
	}{
		{"zero concurrency", v1alpha1.Rule{Hosts: []v1alpha1.HostPattern{"example.com"}, MaxConcurrency: n(0)}, "maxConcurrency"},
		{"bad duration", v1alpha1.Rule{Hosts: []v1alpha1.HostPattern{"example.com"}, MinDelay: d("5 seconds")}, "minDelay"},
		{"overflowing duration", v1alpha1.Rule{Hosts: []v1alpha1.HostPattern{"example.com"}, MaxCrawlDelay: d("9999999999h")}, "maxCrawlDelay"},
		{"zero wait", v1alpha1.Rule{Hosts: []v1alpha1.HostPattern{"example.com"}, WaitTimeout: d("0s")}, "waitTimeout must be positive"},
		{"bad host", v1alpha1.Rule{Hosts: []v1alpha1.HostPattern{"exa mple.com"}}, "should match"},
		{"bad wildcard", v1alpha1.Rule{Hosts: []v1alpha1.HostPattern{"foo.*.com"}}, "should match"},
		{"no hosts", v1alpha1.Rule{}, "hosts"},
		{"bad robots", v1alpha1.Rule{Hosts: []v1alpha1.HostPattern{"example.com"}, Robots: new("sometimes")}, "robots"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cp := &v1alpha1.CrawlPolicy{ObjectMeta: metav1.ObjectMeta{Name: "bad"}, Spec: v1alpha1.CrawlPolicySpec{Rules: []v1alpha1.Rule{c.rule}}}
			err := k.c.Create(ctx, cp)
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("want Invalid mentioning %q, got %v", c.want, err)
			}
			if err == nil {
				_ = k.c.Delete(ctx, cp)
			}
		})
	}
	good := &v1alpha1.CrawlPolicy{ObjectMeta: metav1.ObjectMeta{Name: "good"}, Spec: v1alpha1.CrawlPolicySpec{Rules: []v1alpha1.Rule{{
		Hosts: []v1alpha1.HostPattern{"example.com", "*.example.org", "example.net:8443", "[2001:db8::1]:443"}, MaxConcurrency: n(4),
		MinDelay: d("250ms"), WaitTimeout: d("1m30s"), Robots: new("ignore"), TLS: new("tunnel")}}}}
	if err := k.c.Create(ctx, good); err != nil {
		t.Errorf("good policy rejected: %v", err)
	}
}

// TestPolicyController: the controller delivers the compiled policy to a namespace with injected
// pods, reports in status, and follows a policy change; conflicts between policies are reported.
func TestPolicyController(t *testing.T) {
	k := startCluster(t)
	ctx := t.Context()
	if err := k.c.Create(ctx, pod("crawl", "crawler", true, nil)); err != nil {
		t.Fatal(err)
	}
	cm := func(ns string) (*policy.Policy, string, bool) {
		var m corev1.ConfigMap
		if err := k.c.Get(ctx, types.NamespacedName{Namespace: ns, Name: inject.PolicyConfigMap}, &m); err != nil {
			return nil, "", false
		}
		p, err := policy.Parse([]byte(m.Data[inject.PolicyKey]))
		if err != nil {
			t.Fatalf("delivered policy does not parse: %v\n%s", err, m.Data[inject.PolicyKey])
		}
		return p, m.Data[inject.PolicyKey], true
	}
	waitFor(t, "the policy ConfigMap in namespace crawl", func() bool { _, _, ok := cm("crawl"); return ok })
	if _, _, ok := cm("other"); ok {
		t.Error("a namespace without injected pods got the policy")
	}

	cp := &v1alpha1.CrawlPolicy{ObjectMeta: metav1.ObjectMeta{Name: "news"}, Spec: v1alpha1.CrawlPolicySpec{Rules: []v1alpha1.Rule{{
		Hosts: []v1alpha1.HostPattern{"news.example"}, MaxConcurrency: n(5), MinDelay: d("300ms")}}}}
	if err := k.c.Create(ctx, cp); err != nil {
		t.Fatal(err)
	}
	limitsAre := func(conc int, delay time.Duration) func() bool {
		return func() bool {
			p, _, ok := cm("crawl")
			return ok && p.For("news.example", "") == policy.HostPolicy{MaxConcurrency: conc, MinDelay: delay,
				MaxCrawlDelay: policy.BuiltinDefaults.MaxCrawlDelay, EnforceRobots: true, WaitTimeout: policy.BuiltinDefaults.WaitTimeout}
		}
	}
	waitFor(t, "news.example's rule in the ConfigMap", limitsAre(5, 300*time.Millisecond))
	if p, _, _ := cm("crawl"); p.For("other.example", "").MaxConcurrency != 2 {
		t.Errorf("defaults from the base policy not applied: %+v", p.For("other.example", ""))
	}
	ready := func(name string, gen int64, namespaces int32) func() bool {
		return func() bool {
			var got v1alpha1.CrawlPolicy
			if k.c.Get(ctx, types.NamespacedName{Name: name}, &got) != nil {
				return false
			}
			c := meta.FindStatusCondition(got.Status.Conditions, "Ready")
			return c != nil && c.Status == metav1.ConditionTrue && got.Status.ObservedGeneration == gen && got.Status.Namespaces == namespaces
		}
	}
	waitFor(t, "status Ready, generation 1, 1 namespace", ready("news", 1, 1))

	// A change reaches the ConfigMap; a new namespace with an injected pod gets it too.
	if err := k.c.Get(ctx, types.NamespacedName{Name: "news"}, cp); err != nil {
		t.Fatal(err)
	}
	cp.Spec.Rules[0].MinDelay = d("2s")
	if err := k.c.Update(ctx, cp); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the changed minDelay in the ConfigMap", limitsAre(5, 2*time.Second))
	if err := k.c.Create(ctx, pod("other", "crawler", true, nil)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "status generation 2, 2 namespaces", ready("news", 2, 2))
	if _, _, ok := cm("other"); !ok {
		t.Error("namespace other did not get the policy")
	}

	// A second policy setting the same host differently: both report the conflict, the stricter wins.
	strict := &v1alpha1.CrawlPolicy{ObjectMeta: metav1.ObjectMeta{Name: "strict"}, Spec: v1alpha1.CrawlPolicySpec{Rules: []v1alpha1.Rule{{
		Hosts: []v1alpha1.HostPattern{"news.example"}, MaxConcurrency: n(1)}}}}
	if err := k.c.Create(ctx, strict); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stricter concurrency in the ConfigMap", limitsAre(1, 2*time.Second))
	waitFor(t, "conflicts in both statuses", func() bool {
		for _, name := range []string{"news", "strict"} {
			var got v1alpha1.CrawlPolicy
			if k.c.Get(ctx, types.NamespacedName{Name: name}, &got) != nil || len(got.Status.Conflicts) != 1 ||
				!strings.HasPrefix(got.Status.Conflicts[0], "news.example (also in ") {
				return false
			}
		}
		return true
	})

	// A hand edit of the ConfigMap is repaired.
	var m corev1.ConfigMap
	if err := k.c.Get(ctx, types.NamespacedName{Namespace: "crawl", Name: inject.PolicyConfigMap}, &m); err != nil {
		t.Fatal(err)
	}
	m.Data[inject.PolicyKey] = "defaults:\n  maxConcurrency: 100\n"
	if err := k.c.Update(ctx, &m); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the edited ConfigMap repaired", limitsAre(1, 2*time.Second))
}

// TestRedisSecret: with --redis-password-secret, the sidecar reads the password through a
// secretKeyRef and the controller copies only the password key into each namespace with injected
// pods, follows changes of the source and repairs edits of the copy.
func TestRedisSecret(t *testing.T) {
	k := startCluster(t, "--redis=redis://redis.crawlpolite-system:6379", "--redis-password-secret=redis-auth")
	ctx := t.Context()
	src := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "crawlpolite-system", Name: "redis-auth"},
		Data: map[string][]byte{"password": []byte("s3cret"), "admin-password": []byte("not-for-pods")}}
	if err := k.c.Create(ctx, src); err != nil {
		t.Fatal(err)
	}
	p := pod("crawl", "crawler", true, nil)
	if err := k.c.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	sc := p.Spec.InitContainers[0]
	for _, e := range sc.Env {
		if strings.Contains(e.Value, "s3cret") {
			t.Errorf("%s holds the password as a plain value", e.Name)
		}
		if e.Name == "CRAWLPOLITE_REDIS_PASSWORD" && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil ||
			e.ValueFrom.SecretKeyRef.Name != inject.RedisSecret || e.ValueFrom.SecretKeyRef.Key != "password") {
			t.Errorf("CRAWLPOLITE_REDIS_PASSWORD: %+v", e)
		}
	}
	copyIs := func(ns, want string) func() bool {
		return func() bool {
			var s corev1.Secret
			err := k.c.Get(ctx, types.NamespacedName{Namespace: ns, Name: inject.RedisSecret}, &s)
			if want == "" {
				return apierrors.IsNotFound(err)
			}
			return err == nil && len(s.Data) == 1 && string(s.Data["password"]) == want
		}
	}
	waitFor(t, "the password copied, alone, into namespace crawl", copyIs("crawl", "s3cret"))
	if !copyIs("other", "")() {
		t.Error("a namespace without injected pods got the password")
	}
	src.Data["password"] = []byte("rotated")
	if err := k.c.Update(ctx, src); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the rotated password in namespace crawl", copyIs("crawl", "rotated"))
	var cp corev1.Secret
	if err := k.c.Get(ctx, types.NamespacedName{Namespace: "crawl", Name: inject.RedisSecret}, &cp); err != nil {
		t.Fatal(err)
	}
	cp.Data["password"] = []byte("edited")
	if err := k.c.Update(ctx, &cp); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the edited copy repaired", copyIs("crawl", "rotated"))
}

// TestCleanup: a namespace whose last injected pod is gone loses its policy ConfigMap and Redis
// Secret after the grace period, not before; a pod coming back within it cancels the removal.
func TestCleanup(t *testing.T) {
	const grace = 3 * time.Second
	k := startCluster(t, "--redis-password-secret=redis-auth", "--cleanup-grace="+grace.String())
	ctx := t.Context()
	if err := k.c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "crawlpolite-system", Name: "redis-auth"},
		Data: map[string][]byte{"password": []byte("s3cret")}}); err != nil {
		t.Fatal(err)
	}
	state := func(ns string) (cm *corev1.ConfigMap, secret bool) {
		var m corev1.ConfigMap
		if k.c.Get(ctx, types.NamespacedName{Namespace: ns, Name: inject.PolicyConfigMap}, &m) == nil {
			cm = &m
		}
		var s corev1.Secret
		return cm, k.c.Get(ctx, types.NamespacedName{Namespace: ns, Name: inject.RedisSecret}, &s) == nil
	}
	for _, ns := range []string{"crawl", "other"} {
		if err := k.c.Create(ctx, pod(ns, "crawler", true, nil)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "delivery to "+ns, func() bool { cm, s := state(ns); return cm != nil && s })
	}
	del := func(ns string) {
		if err := k.c.Delete(ctx, pod(ns, "crawler", true, nil)); err != nil {
			t.Fatal(err)
		}
	}
	del("crawl")
	del("other")
	marked := func(ns string, want bool) func() bool {
		return func() bool {
			cm, _ := state(ns)
			return cm != nil && (cm.Annotations["crawlpolite.io/orphaned-since"] != "") == want
		}
	}
	// Marked first: the removal waits for the grace period.
	waitFor(t, "namespace crawl marked orphaned", marked("crawl", true))
	waitFor(t, "namespace other marked orphaned", marked("other", true))
	if err := k.c.Create(ctx, pod("other", "crawler-again", true, nil)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the mark on namespace other cleared", marked("other", false))
	waitFor(t, "namespace crawl cleaned up", func() bool { cm, s := state("crawl"); return cm == nil && !s })
	time.Sleep(grace + time.Second)
	if cm, s := state("other"); cm == nil || !s || cm.Annotations["crawlpolite.io/orphaned-since"] != "" {
		t.Errorf("namespace other has injected pods again but lost its delivery: configmap %v, secret %v", cm != nil, s)
	}
}
