package charttest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/template"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/crawlpolite/crawlpolite/internal/inject"
	"github.com/crawlpolite/crawlpolite/internal/policy"
)

// testInjection applies the chart's default render for real (but the webhook configuration, which
// envtest installed pointing at us, and the test hooks), starts the built webhook with the chart's
// Deployment arguments, and checks what a labelled pod comes back with.
func testInjection(t *testing.T, cfg *rest.Config, c client.Client, env *envtest.Environment, objs []*unstructured.Unstructured) {
	ctx := t.Context()
	var real []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() != "MutatingWebhookConfiguration" && o.GetAnnotations()["helm.sh/hook"] == "" {
			real = append(real, o)
		}
	}
	apply(t, c, real)
	p := startManager(t, cfg, env, objs)

	checkHook(t, c, objs, p)
	pod := labelled("crawler")
	if err := c.Create(ctx, pod); err != nil {
		t.Fatalf("labelled pod: %v\n%s", err, p.output)
	}
	sc := sidecarOf(pod)
	if sc == nil {
		t.Fatalf("labelled pod not injected: %+v\n%s", pod.Spec, p.output)
	}
	checkSidecar(t, pod, sc, objs)

	// The chart's base policy (policy.defaults) reaches the namespace through the controller.
	var got *policy.Policy
	waitFor(t, "the policy ConfigMap in namespace crawl", p, func() bool {
		var m corev1.ConfigMap
		if c.Get(ctx, types.NamespacedName{Namespace: "crawl", Name: inject.PolicyConfigMap}, &m) != nil {
			return false
		}
		var err error
		got, err = policy.Parse([]byte(m.Data[inject.PolicyKey]))
		return err == nil
	})
	if l := got.For("example.com", ""); l.MaxConcurrency != 2 || l.MinDelay != time.Second || !l.EnforceRobots {
		t.Errorf("delivered defaults %+v, want the chart's (2, 1s, enforce)", l)
	}
	checkPassword(t, c, pod, sc, objs, p)
}

// startManager runs the built webhook as the image would, with the chart's Deployment arguments
// and what stands in for the cluster: envtest's serving certificate, a kubeconfig, the base policy
// file the chart's ConfigMap would mount.
func startManager(t *testing.T, cfg *rest.Config, env *envtest.Environment, objs []*unstructured.Unstructured) *process {
	_, webhook := built(t)
	ctr := field(t, find(t, objs, "Deployment", release+"-webhook"), "spec", "template", "spec", "containers").([]any)[0].(map[string]any)
	dir := sharedDir(t)
	wio := env.WebhookInstallOptions
	for _, f := range []string{"tls.crt", "tls.key"} { // envtest's are readable by us alone
		b, err := os.ReadFile(filepath.Join(wio.LocalServingCertDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	base, _, _ := unstructured.NestedString(find(t, objs, "ConfigMap", release+"-base-policy").Object, "data", "policy.yaml")
	if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	probes := freePort(t)
	args := append(localArgs(t, ctr, dir), "--namespace="+namespace, "--kubeconfig="+kubeconfig(t, cfg, dir),
		"--cert-mode=external", "--cert-dir="+dir, "--webhook-host="+wio.LocalServingHost, fmt.Sprintf("--webhook-port=%d", wio.LocalServingPort),
		"--metrics-bind-address=0", fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", probes))
	p := start(t, webhook, args...)
	p.waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/readyz", probes))
	return p
}

func labelled(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "crawl", Name: name, Labels: map[string]string{inject.InjectLabel: "enabled"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "crawler:1"}}},
	}
}

// checkHook: what the chart's `helm test` hook asks for, a server-side dry run of a labelled pod,
// comes back with the sidecar; the hook's own check (kubectl's go-template, missing keys an error)
// passes on that answer and fails on a pod without the sidecar.
func checkHook(t *testing.T, c client.Client, objs []*unstructured.Unstructured, p *process) {
	ctx := t.Context()
	dry := labelled("dry")
	if err := c.Create(ctx, dry, client.DryRunAll); err != nil {
		t.Fatalf("dry-run labelled pod: %v\n%s", err, p.output)
	}
	if sidecarOf(dry) == nil {
		t.Errorf("dry-run labelled pod not injected: %+v", dry.Spec)
	}
	plain := labelled("plain")
	plain.Labels = nil
	if err := c.Create(ctx, plain, client.DryRunAll); err != nil {
		t.Fatal(err)
	}
	check := hookTemplate(t, find(t, objs, "Pod", release+"-test"))
	if out, err := check(dry); err != nil || out != "sidecar crawlpolite-proxy injected\n" {
		t.Errorf("helm test template on an injected pod: %q, %v", out, err)
	}
	if out, err := check(plain); err == nil || !strings.Contains(err.Error(), "noSidecarInjected") {
		t.Errorf("helm test template on a pod without the sidecar: %q, %v; want an error", out, err)
	}
}

// checkSidecar: the sidecar and the app container carry what the chart's values say.
func checkSidecar(t *testing.T, pod *corev1.Pod, sc *corev1.Container, objs []*unstructured.Unstructured) {
	dep := find(t, objs, "Deployment", release+"-webhook")
	if want := field(t, dep, "spec", "template", "spec", "containers").([]any)[0].(map[string]any)["image"]; sc.Image != want {
		t.Errorf("sidecar image %q, want the chart's %q", sc.Image, want)
	}
	if len(sc.Command) == 0 || sc.Command[0] != inject.SidecarBinary {
		t.Errorf("sidecar command %v, want %s", sc.Command, inject.SidecarBinary)
	}
	if lim := sc.Resources.Limits; lim.Cpu().String() != "1" || lim.Memory().String() != "256Mi" {
		t.Errorf("sidecar limits %v, want the chart's sidecar.resources", lim)
	}
	if got := envValue(*sc, "CRAWLPOLITE_REDIS"); got != "redis://crawlpolite-redis.crawlpolite.svc:6379" {
		t.Errorf("sidecar CRAWLPOLITE_REDIS %q, want the bundled Redis", got)
	}
	if got := envValue(*sc, "CRAWLPOLITE_ON_REDIS_DOWN"); got != "fail" {
		t.Errorf("sidecar CRAWLPOLITE_ON_REDIS_DOWN %q", got)
	}
	if m := mounts(*sc); !slices.Contains(m, "/etc/crawlpolite/ca") || !slices.Contains(m, "/etc/crawlpolite/policy") {
		t.Errorf("sidecar mounts %v", m)
	}
	// The chart's PodMonitor scrapes the admin port by name; NOTES.txt port-forwards 15081.
	pm := find(t, render(t, namespace, "monitoring.yaml"), "PodMonitor", release+"-sidecars")
	port := field(t, pm, "spec", "podMetricsEndpoints").([]any)[0].(map[string]any)["port"]
	if !slices.ContainsFunc(sc.Ports, func(p corev1.ContainerPort) bool { return p.Name == port && p.ContainerPort == 15081 }) {
		t.Errorf("sidecar ports %+v: none named %v (the chart's PodMonitor) on 15081 (NOTES.txt)", sc.Ports, port)
	}
	app := pod.Spec.Containers[len(pod.Spec.Containers)-1]
	if envValue(app, "HTTPS_PROXY") != fmt.Sprintf("http://127.0.0.1:%d", inject.ProxyPort) || !slices.Contains(mounts(app), "/etc/crawlpolite/ca") {
		t.Errorf("app container env %v, mounts %v", app.Env, mounts(app))
	}
}

// checkPassword: the bundled Redis password reaches the sidecar through a secretKeyRef to the copy
// the controller delivers, and appears neither in the pod nor in the manager's output.
func checkPassword(t *testing.T, c client.Client, pod *corev1.Pod, sc *corev1.Container, objs []*unstructured.Unstructured, p *process) {
	ctx := t.Context()
	var pw *corev1.EnvVar
	for i, e := range sc.Env {
		if e.Name == "CRAWLPOLITE_REDIS_PASSWORD" {
			pw = &sc.Env[i]
		}
	}
	if pw == nil || pw.Value != "" || pw.ValueFrom == nil || pw.ValueFrom.SecretKeyRef == nil ||
		pw.ValueFrom.SecretKeyRef.Name != "crawlpolite-redis" || pw.ValueFrom.SecretKeyRef.Key != "password" {
		t.Errorf("sidecar CRAWLPOLITE_REDIS_PASSWORD %+v, want a secretKeyRef to crawlpolite-redis/password", pw)
	}
	enc, _, _ := unstructured.NestedString(find(t, objs, "Secret", release+"-redis-auth").Object, "data", "password")
	password, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(password) < 16 {
		t.Fatalf("bundled Redis password %q: %v", password, err)
	}
	var live corev1.Pod
	if err := c.Get(ctx, client.ObjectKeyFromObject(pod), &live); err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(&live); strings.Contains(string(b), string(password)) {
		t.Error("the Redis password is in the pod")
	}
	waitFor(t, "the Redis password Secret in namespace crawl", p, func() bool {
		var s corev1.Secret
		return c.Get(ctx, types.NamespacedName{Namespace: "crawl", Name: "crawlpolite-redis"}, &s) == nil && string(s.Data["password"]) == string(password)
	})
	if strings.Contains(p.output.String(), string(password)) {
		t.Error("the webhook logged the Redis password")
	}
}

func mounts(ct corev1.Container) []string {
	var m []string
	for _, v := range ct.VolumeMounts {
		m = append(m, v.MountPath)
	}
	return m
}

// localArgs are the chart Deployment's manager arguments, minus those that only make sense in the
// cluster (the test sets its own certificate mode and directory); the base policy is the rendered
// ConfigMap's file, written where --base-policy can read it.
func localArgs(t *testing.T, ctr map[string]any, dir string) []string {
	t.Helper()
	var args []string
	for _, a := range ctr["args"].([]any) {
		s := a.(string)
		switch {
		case strings.HasPrefix(s, "--cert-mode="):
		case strings.HasPrefix(s, "--base-policy="):
			args = append(args, "--base-policy="+filepath.Join(dir, "policy.yaml"))
		default:
			args = append(args, s)
		}
	}
	return args
}

func kubeconfig(t *testing.T, cfg *rest.Config, dir string) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	kc.CurrentContext = "envtest"
	p := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, p); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// hookTemplate is the go-template the chart's helm test pod gives kubectl, run as kubectl runs it
// with --allow-missing-template-keys=false: on the object's JSON, missing keys an error.
func hookTemplate(t *testing.T, hook *unstructured.Unstructured) func(*corev1.Pod) (string, error) {
	t.Helper()
	var src string
	for _, a := range field(t, hook, "spec", "containers").([]any)[0].(map[string]any)["args"].([]any) {
		if s, ok := strings.CutPrefix(a.(string), "--output=go-template="); ok {
			src = s
		}
	}
	tmpl, err := template.New("hook").Option("missingkey=error").Parse(src)
	if err != nil || src == "" {
		t.Fatalf("helm test hook template %q: %v", src, err)
	}
	return func(p *corev1.Pod) (string, error) {
		b, err := json.Marshal(p)
		if err != nil {
			return "", err
		}
		var obj any
		if err := json.Unmarshal(b, &obj); err != nil {
			return "", err
		}
		var out strings.Builder
		err = tmpl.Execute(&out, obj)
		return out.String(), err
	}
}

func sidecarOf(p *corev1.Pod) *corev1.Container {
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for i := range cs {
			if cs[i].Name == inject.ContainerName {
				return &cs[i]
			}
		}
	}
	return nil
}

func envValue(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

func waitFor(t *testing.T, what string, p *process, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; webhook output:\n%s", what, p.output)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
