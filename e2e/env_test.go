package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/crawlpolite/crawlpolite/api/v1alpha1"
	"github.com/crawlpolite/crawlpolite/internal/kubetest"
	"github.com/crawlpolite/crawlpolite/internal/redistest"
)

const (
	managerNS     = "crawlpolite" // the release's namespace
	redisPassword = "e2e-s3cret"
)

// env is one whole installation: API server, Redis, the webhook process, the stand-in kubelet.
type env struct {
	t       *testing.T
	c       client.Client
	redis   *redistest.Server  // startEnv
	cluster *redistest.Cluster // startClusterEnv
	webhook *proc
	kubelet *kubelet
	ca      *testCA

	webhookArgs []string
	webhookEnv  []string
}

// startEnv installs crawlpolite from the Helm chart's rendered objects (CRDs, RBAC, ServiceAccount,
// base policy, webhook configuration) and starts the webhook binary with the chart Deployment's
// arguments, as its ServiceAccount; values are extra `--set` arguments.
func startEnv(t *testing.T, values ...string) *env {
	t.Helper()
	e := &env{t: t, ca: newTestCA(t)}
	e.redis = redistest.Start(t, "--requirepass", redisPassword)
	e.install(t, append([]string{"--set", "redis.url=redis://" + e.redis.Addr, "--set", "redis.existingSecret=redis-auth"}, values...))
	return e
}

// startClusterEnv is startEnv on a six-node Redis Cluster (no password: redistest's cluster has none),
// set up as the README asks (cluster-require-full-coverage no: with Redis's default every shard
// refuses writes while one master is down).
func startClusterEnv(t *testing.T, values ...string) *env {
	t.Helper()
	e := &env{t: t, ca: newTestCA(t)}
	e.cluster = redistest.StartCluster(t, "--cluster-require-full-coverage", "no")
	addrs := e.cluster.Addrs()
	url := "redis+cluster://" + addrs[0] + "?addr=" + strings.Join(addrs[1:], "&addr=")
	e.install(t, append([]string{"--set", "redis.url=" + url}, values...))
	return e
}

func (e *env) install(t *testing.T, values []string) {
	t.Helper()
	objs := renderChart(t, append([]string{"--set", "redis.mode=external", "--set", "sidecar.allowCIDRs={127.0.1.0/24}", "--set", "cleanupGrace=1m",
		"--set", "policy.defaults.maxConcurrency=2", "--set", "policy.defaults.minDelay=50ms"}, values...)...)
	var mwc admissionregistrationv1.MutatingWebhookConfiguration
	must(t, runtime.DefaultUnstructuredConverter.FromUnstructured(find(t, objs, "MutatingWebhookConfiguration", "crawlpolite").Object, &mwc))
	kenv := &envtest.Environment{
		CRDDirectoryPaths: []string{"../charts/crawlpolite/crds"},
		// The chart's webhook configuration; envtest points it at the local webhook by URL.
		WebhookInstallOptions: envtest.WebhookInstallOptions{MutatingWebhooks: []*admissionregistrationv1.MutatingWebhookConfiguration{&mwc}},
	}
	cfg := kubetest.Start(t, kenv)
	e.c = kubetest.Client(t, cfg, v1alpha1.AddToScheme)
	kubetest.Namespaces(t, e.c, managerNS, "crawl", "batch")
	for _, o := range objs {
		switch o.GetKind() {
		case "CustomResourceDefinition", "MutatingWebhookConfiguration", "Deployment", "Service", "PodDisruptionBudget":
			continue // installed by envtest, or played by the test (the manager runs as a process)
		}
		if _, hook := o.GetAnnotations()["helm.sh/hook"]; hook {
			continue
		}
		if err := e.c.Create(t.Context(), o); err != nil {
			t.Fatalf("chart object %s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
	if err := e.c.Create(t.Context(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: managerNS, Name: "redis-auth"},
		Data: map[string][]byte{"password": []byte(redisPassword)}}); err != nil {
		t.Fatal(err)
	}
	// The webhook runs as the chart's ServiceAccount: what the chart's RBAC grants is all it has.
	user, err := kenv.AddUser(envtest.User{Name: "system:serviceaccount:" + managerNS + ":crawlpolite-webhook",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + managerNS, "system:authenticated"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kcFile, baseFile := filepath.Join(dir, "kubeconfig"), filepath.Join(dir, "policy.yaml")
	must(t, os.WriteFile(kcFile, kubeconfig, 0o600))
	base, _, _ := unstructured.NestedString(find(t, objs, "ConfigMap", "crawlpolite-base-policy").Object, "data", "policy.yaml")
	must(t, os.WriteFile(baseFile, []byte(base), 0o644))
	wio := kenv.WebhookInstallOptions
	// The chart Deployment's arguments, but for those that only make sense in the cluster.
	dep := find(t, objs, "Deployment", "crawlpolite-webhook")
	ctrs, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	for _, a := range ctrs[0].(map[string]any)["args"].([]any) {
		switch arg := a.(string); {
		case strings.HasPrefix(arg, "--cert-mode="), strings.HasPrefix(arg, "--metrics-bind-address="),
			strings.HasPrefix(arg, "--health-probe-bind-address="), strings.HasPrefix(arg, "--webhook-port="):
		case strings.HasPrefix(arg, "--base-policy="):
			e.webhookArgs = append(e.webhookArgs, "--base-policy="+baseFile)
		default:
			e.webhookArgs = append(e.webhookArgs, arg)
		}
	}
	e.webhookArgs = append(e.webhookArgs, "--cert-mode=external", "--cert-dir="+wio.LocalServingCertDir,
		"--webhook-host="+wio.LocalServingHost, fmt.Sprintf("--webhook-port=%d", wio.LocalServingPort),
		"--metrics-bind-address=0", "--health-probe-bind-address=127.0.0.1:0", "--kubeconfig="+kcFile,
		"--sidecar-image=ghcr.io/crawlpolite/crawlpolite:e2e")
	e.webhookEnv = []string{"POD_NAMESPACE=" + managerNS}
	e.startWebhook(t)
	waitFor(t, "the webhook server", 30*time.Second, func() bool {
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(wio.LocalServingHost, strconv.Itoa(wio.LocalServingPort)), time.Second)
		if err == nil {
			_ = conn.Close()
		}
		return err == nil
	})
	e.kubelet = startKubelet(t, e.c, e.ca.File)
}

// renderChart runs helm template on the chart in the manager's namespace.
func renderChart(t *testing.T, args ...string) []*unstructured.Unstructured {
	t.Helper()
	helm, err := exec.LookPath("helm")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("helm not on PATH: run `eval $(hack/test-deps.sh all)` or make test")
		}
		t.Skip("helm not on PATH: run `eval $(hack/test-deps.sh all)` or make test")
	}
	cmd := exec.Command(helm, append([]string{"template", "crawlpolite", "../charts/crawlpolite", "--namespace", managerNS}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template: %v: %s", err, stderr.String())
	}
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	for {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			return objs
		} else if err != nil {
			t.Fatalf("helm template output: %v", err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, &u)
		}
	}
}

func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("the chart renders no %s %s", kind, name)
	return nil
}

func (e *env) startWebhook(t *testing.T) {
	e.webhook = startProc(t, "webhook", bins["crawlpolite-webhook"], e.webhookArgs, e.webhookEnv)
}

// proc is one process the suite started, its output kept.
type proc struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer // stderr (logs)
	std  bytes.Buffer // stdout
	done chan struct{}
	err  error
}

func startProc(t *testing.T, name, bin string, args, env []string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout = writerFunc(func(b []byte) { p.mu.Lock(); p.std.Write(b); p.mu.Unlock() })
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("%s (pid %d) log:\n%s", name, p.cmd.Process.Pid, tail(p.logs(), 40))
		}
	})
	return p
}

type writerFunc func([]byte)

func (f writerFunc) Write(b []byte) (int, error) { f(b); return len(b), nil }

func (p *proc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *proc) stdout() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.std.String()
}

func (p *proc) signal(s syscall.Signal) { _ = p.cmd.Process.Signal(s) }

func (p *proc) kill() {
	p.signal(syscall.SIGKILL)
	<-p.done
}

// exited reports whether the process ended, and how.
func (p *proc) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

func (p *proc) wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("%s still running after %v", p.name, timeout)
	}
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func httpGet(url string) (int, error) {
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(url)
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// policySeen waits until the controller reported on CrawlPolicy name at generation gen: the
// policy it delivers from then on includes it.
func (e *env) policySeen(t *testing.T, name string, gen int64) {
	t.Helper()
	waitFor(t, "CrawlPolicy "+name+" observed", 30*time.Second, func() bool {
		var cp v1alpha1.CrawlPolicy
		return e.c.Get(t.Context(), client.ObjectKey{Name: name}, &cp) == nil && cp.Status.ObservedGeneration >= gen
	})
}
