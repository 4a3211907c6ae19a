package e2e

import (
	"bufio"
	"bytes"
	"context"
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

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/crawlpolite/crawlpolite/api/v1alpha1"
	"github.com/crawlpolite/crawlpolite/internal/kubetest"
	"github.com/crawlpolite/crawlpolite/internal/redistest"
)

const (
	managerNS     = "crawlpolite-system"
	redisPassword = "e2e-s3cret"
)

// env is one whole installation: API server, Redis, the webhook process, the stand-in kubelet.
type env struct {
	t       *testing.T
	c       client.Client
	redis   *redistest.Server
	webhook *proc
	kubelet *kubelet
	ca      *testCA

	webhookArgs []string
	webhookEnv  []string
}

// startEnv installs crawlpolite from the repository's manifests (CRD, webhook configuration, RBAC)
// and starts the webhook binary as its ServiceAccount, with base as its base policy.
func startEnv(t *testing.T, base string) *env {
	t.Helper()
	e := &env{t: t, ca: newTestCA(t)}
	e.redis = redistest.Start(t, "--requirepass", redisPassword)
	kenv := &envtest.Environment{
		CRDDirectoryPaths:     []string{"../config/crd/bases"},
		WebhookInstallOptions: envtest.WebhookInstallOptions{Paths: []string{"../config/webhook"}},
	}
	cfg := kubetest.Start(t, kenv)
	e.c = kubetest.Client(t, cfg, v1alpha1.AddToScheme)
	kubetest.Namespaces(t, e.c, managerNS, "crawl", "batch")
	e.apply(t, "../config/rbac/role.yaml")
	e.apply(t, "../config/rbac/service_account.yaml")
	if err := e.c.Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: managerNS, Name: "redis-auth"},
		Data: map[string][]byte{"password": []byte(redisPassword)}}); err != nil {
		t.Fatal(err)
	}
	// The webhook runs as its ServiceAccount: what config/rbac grants is all it has.
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
	kcFile, baseFile := filepath.Join(dir, "kubeconfig"), filepath.Join(dir, "base.yaml")
	must(t, os.WriteFile(kcFile, kubeconfig, 0o600))
	must(t, os.WriteFile(baseFile, []byte(base), 0o644))
	wio := kenv.WebhookInstallOptions
	e.webhookArgs = []string{
		"--cert-mode=external", "--cert-dir=" + wio.LocalServingCertDir,
		"--webhook-host=" + wio.LocalServingHost, fmt.Sprintf("--webhook-port=%d", wio.LocalServingPort),
		"--metrics-bind-address=0", "--health-probe-bind-address=127.0.0.1:0", "--kubeconfig=" + kcFile,
		"--sidecar-image=ghcr.io/crawlpolite/crawlpolite:e2e", "--redis=redis://" + e.redis.Addr,
		"--redis-password-secret=redis-auth", "--allow-cidr=127.0.1.0/24", "--base-policy=" + baseFile,
		"--cleanup-grace=1m", "--log-level=info",
	}
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
	return e
}

func (e *env) startWebhook(t *testing.T) {
	e.webhook = startProc(t, "webhook", bins["crawlpolite-webhook"], e.webhookArgs, e.webhookEnv)
}

// apply creates every object of a manifest file.
func (e *env) apply(t *testing.T, file string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			return
		} else if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(u.Object) == 0 {
			continue
		}
		if err := e.c.Create(context.Background(), &u); err != nil {
			t.Fatalf("%s: %s %s: %v", file, u.GetKind(), u.GetName(), err)
		}
	}
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
		return e.c.Get(context.Background(), client.ObjectKey{Name: name}, &cp) == nil && cp.Status.ObservedGeneration >= gen
	})
}
