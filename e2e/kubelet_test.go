package e2e

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// images maps the image of an app container to the program it runs (the sidecar's image names its
// command, which is looked up by base name).
var images = map[string]string{"crawler:e2e": "crawler"}

// kubelet plays the node's part for every pod created in the suite's namespaces: it starts each
// container as a process with what the spec gives it. All pods share the host's network, so the
// pod-local ports 15080 and 15081 are remapped per pod wherever they appear. It runs until its
// Cleanup closes stop, after the test body, so its API calls use context.Background(): t.Context()
// is cancelled before cleanups run.
type kubelet struct {
	t        *testing.T
	c        client.Client
	originCA string

	mu   sync.Mutex
	pods map[string]*podRun // namespace/name
	stop chan struct{}
}

// podRun is one pod's processes.
type podRun struct {
	Pod              *corev1.Pod
	Sidecar          *proc
	SidecarExit      chan error // the sidecar's exit, once it ended
	Apps             []*proc
	Proxy, Admin     int // the remapped ports
	Native           bool
	started, appsEnd chan struct{}
	err              error
}

func startKubelet(t *testing.T, c client.Client, originCA string) *kubelet {
	k := &kubelet{t: t, c: c, originCA: originCA, pods: map[string]*podRun{}, stop: make(chan struct{})}
	go k.loop()
	t.Cleanup(func() { close(k.stop) })
	return k
}

func (k *kubelet) loop() {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-k.stop:
			return
		case <-tick.C:
		}
		var pods corev1.PodList
		if err := k.c.List(context.Background(), &pods); err != nil {
			continue
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.Namespace != "crawl" && p.Namespace != "batch" {
				continue
			}
			key := p.Namespace + "/" + p.Name
			k.mu.Lock()
			if _, ok := k.pods[key]; !ok {
				r := &podRun{Pod: p.DeepCopy(), started: make(chan struct{}), appsEnd: make(chan struct{}), SidecarExit: make(chan error, 1)}
				k.pods[key] = r
				go k.run(r)
			}
			k.mu.Unlock()
		}
	}
}

// pod waits until namespace/name's containers have started.
func (k *kubelet) pod(t *testing.T, ns, name string) *podRun {
	t.Helper()
	var r *podRun
	waitFor(t, "the kubelet to see pod "+ns+"/"+name, 30*time.Second, func() bool {
		k.mu.Lock()
		defer k.mu.Unlock()
		r = k.pods[ns+"/"+name]
		return r != nil
	})
	select {
	case <-r.started:
	case <-time.After(60 * time.Second):
		t.Fatalf("pod %s/%s did not start", ns, name)
	}
	if r.err != nil {
		t.Fatalf("pod %s/%s: %v", ns, name, r.err)
	}
	return r
}

// WaitApps waits until every app container of the pod has exited.
func (r *podRun) WaitApps(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-r.appsEnd:
	case <-time.After(timeout):
		t.Fatalf("pod %s: app containers still running after %v", r.Pod.Name, timeout)
	}
}

func (k *kubelet) run(r *podRun) {
	t := k.t
	defer close(r.started)
	pod := r.Pod
	dir, err := os.MkdirTemp(t.TempDir(), pod.Name)
	if err != nil {
		r.err = err
		return
	}
	r.Proxy, r.Admin = freePort(t), freePort(t)
	volumes := map[string]string{}
	for _, v := range pod.Spec.Volumes {
		volumes[v.Name] = filepath.Join(dir, "volumes", v.Name)
		if err := os.MkdirAll(volumes[v.Name], 0o755); err != nil {
			r.err = err
			return
		}
		if v.ConfigMap != nil {
			if err := k.syncConfigMap(pod.Namespace, v.ConfigMap.Name, volumes[v.Name], true); err != nil {
				r.err = err
				return
			}
			go k.refresh(pod.Namespace, v.ConfigMap.Name, volumes[v.Name])
		}
	}
	var sidecar *corev1.Container
	var apps []corev1.Container
	for i, c := range pod.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sidecar, r.Native = &pod.Spec.InitContainers[i], true
		}
	}
	for i, c := range pod.Spec.Containers {
		if c.Name == "crawlpolite-proxy" {
			sidecar = &pod.Spec.Containers[i]
		} else {
			apps = append(apps, c)
		}
	}
	if sidecar == nil {
		r.err = fmt.Errorf("no sidecar injected")
		return
	}
	args, env, err := k.container(pod, *sidecar, volumes, r)
	if err != nil {
		r.err = err
		return
	}
	// The test's HTTPS origins are signed by a CA the sidecar is told to trust (the one liberty
	// taken with the spec).
	env = append(env, "SSL_CERT_FILE="+k.originCA)
	r.Sidecar = startProc(t, pod.Name+"/"+sidecar.Name, bins[filepath.Base(sidecar.Command[0])], args, env)
	go func() { <-r.Sidecar.done; r.SidecarExit <- r.Sidecar.err }()
	if sidecar.Lifecycle != nil && sidecar.Lifecycle.PostStart != nil && sidecar.Lifecycle.PostStart.Exec != nil {
		cmd := sidecar.Lifecycle.PostStart.Exec.Command
		hook := startProc(t, pod.Name+"/postStart", bins[filepath.Base(cmd[0])], k.remap(cmd[1:], sidecar, volumes, r), env)
		if err := hook.wait(2 * time.Minute); err != nil {
			r.err = fmt.Errorf("postStart: %w\n%s", err, hook.logs())
			return
		}
	} else if err := k.probe(sidecar.StartupProbe, r); err != nil {
		r.err = err
		return
	}
	for _, c := range apps {
		args, env, err := k.container(pod, c, volumes, r)
		if err != nil {
			r.err = err
			return
		}
		r.Apps = append(r.Apps, startProc(t, pod.Name+"/"+c.Name, bins[images[c.Image]], args, env))
	}
	go func() {
		for _, a := range r.Apps {
			<-a.done
		}
		close(r.appsEnd)
		// A native sidecar is stopped once the main containers are done: the pod can complete.
		if r.Native {
			r.Sidecar.signal(syscall.SIGTERM)
		}
	}()
}

// probe waits for a startup probe's HTTP GET to succeed, as the kubelet would.
func (k *kubelet) probe(p *corev1.Probe, r *podRun) error {
	if p == nil || p.HTTPGet == nil {
		return nil
	}
	port := p.HTTPGet.Port.IntValue()
	if port == 15081 {
		port = r.Admin
	}
	limit := time.Duration(p.PeriodSeconds*p.FailureThreshold) * time.Second
	deadline := time.Now().Add(limit)
	for {
		if code, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d%s", port, p.HTTPGet.Path)); err == nil && code == 200 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("startup probe %s failed for %v:\n%s", p.HTTPGet.Path, limit, r.Sidecar.logs())
		}
		if done, err := r.Sidecar.exited(); done {
			return fmt.Errorf("sidecar exited: %w\n%s", err, r.Sidecar.logs())
		}
		time.Sleep(time.Duration(p.PeriodSeconds) * time.Second / 10)
	}
}

// container resolves a container's arguments and environment.
func (k *kubelet) container(pod *corev1.Pod, c corev1.Container, volumes map[string]string, r *podRun) ([]string, []string, error) {
	env := []string{}
	for _, e := range c.Env {
		v := e.Value
		if f := e.ValueFrom; f != nil {
			var err error
			if v, err = k.valueFrom(pod, f); err != nil {
				return nil, nil, fmt.Errorf("%s: env %s: %w", c.Name, e.Name, err)
			}
		}
		env = append(env, e.Name+"="+k.remap([]string{v}, &c, volumes, r)[0])
	}
	return k.remap(c.Args, &c, volumes, r), env, nil
}

func (k *kubelet) valueFrom(pod *corev1.Pod, f *corev1.EnvVarSource) (string, error) {
	switch {
	case f.SecretKeyRef != nil:
		// The kubelet holds the container back until the Secret exists.
		deadline := time.Now().Add(30 * time.Second)
		for {
			var s corev1.Secret
			err := k.c.Get(context.Background(), types.NamespacedName{Namespace: pod.Namespace, Name: f.SecretKeyRef.Name}, &s)
			if err == nil {
				if v, ok := s.Data[f.SecretKeyRef.Key]; ok {
					return string(v), nil
				}
			}
			if time.Now().After(deadline) {
				return "", fmt.Errorf("secret %s key %s: %w", f.SecretKeyRef.Name, f.SecretKeyRef.Key, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	case f.ResourceFieldRef != nil:
		ref := f.ResourceFieldRef
		var q resource.Quantity
		for _, c := range append(slices.Clone(pod.Spec.InitContainers), pod.Spec.Containers...) {
			if c.Name == ref.ContainerName {
				q = c.Resources.Limits[corev1.ResourceName(strings.TrimPrefix(ref.Resource, "limits."))]
			}
		}
		if q.IsZero() { // no limit: the node's allocatable, as the kubelet says
			q = map[string]resource.Quantity{"limits.cpu": resource.MustParse("2"), "limits.memory": resource.MustParse("8Gi")}[ref.Resource]
		}
		div := ref.Divisor
		if div.IsZero() {
			div = resource.MustParse("1")
		}
		return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(div.MilliValue()))), 10), nil
	case f.FieldRef != nil && f.FieldRef.FieldPath == "metadata.namespace":
		return pod.Namespace, nil
	case f.FieldRef != nil && f.FieldRef.FieldPath == "metadata.name":
		return pod.Name, nil
	}
	return "", fmt.Errorf("unsupported source %+v", f)
}

// remap rewrites pod-local ports and mount paths into the process's view.
func (k *kubelet) remap(in []string, c *corev1.Container, volumes map[string]string, r *podRun) []string {
	mounts := slices.Clone(c.VolumeMounts)
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].MountPath) > len(mounts[j].MountPath) })
	out := make([]string, len(in))
	for i, s := range in {
		s = strings.ReplaceAll(s, ":15080", ":"+strconv.Itoa(r.Proxy))
		s = strings.ReplaceAll(s, "127.0.0.1:15081", "127.0.0.1:"+strconv.Itoa(r.Admin))
		s = strings.ReplaceAll(s, "=:15081", "=127.0.0.1:"+strconv.Itoa(r.Admin))
		for _, m := range mounts {
			s = strings.ReplaceAll(s, m.MountPath, volumes[m.Name])
		}
		out[i] = s
	}
	return out
}

// syncConfigMap writes a ConfigMap's data into dir as the kubelet does (atomically per file).
func (k *kubelet) syncConfigMap(ns, name, dir string, wait bool) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var cm corev1.ConfigMap
		err := k.c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &cm)
		if err == nil {
			for key, v := range cm.Data {
				path := filepath.Join(dir, key)
				if old, err := os.ReadFile(path); err == nil && string(old) == v {
					continue
				}
				if err := os.WriteFile(path+".tmp", []byte(v), 0o644); err != nil {
					return err
				}
				if err := os.Rename(path+".tmp", path); err != nil {
					return err
				}
			}
			return nil
		}
		if !wait || time.Now().After(deadline) {
			return fmt.Errorf("configmap %s/%s: %w", ns, name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// refresh keeps a ConfigMap volume current (the kubelet's sync is about a minute; here 500 ms).
func (k *kubelet) refresh(ns, name, dir string) {
	for {
		select {
		case <-k.stop:
			return
		case <-time.After(500 * time.Millisecond):
		}
		_ = k.syncConfigMap(ns, name, dir, false)
	}
}
