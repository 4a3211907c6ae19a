package inject

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func testConfig() Config {
	c := DefaultConfig()
	c.Image = "registry.example/crawlpolite:v1"
	c.NoProxy = []string{".internal.example"}
	c.Redis = "redis://redis.crawlpolite:6379"
	return c
}

func crawlerPod(annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "crawler", Namespace: "crawl", Labels: map[string]string{InjectLabel: "enabled"}, Annotations: annotations},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "fetch-seeds", Image: "busybox"}},
			Containers:     []corev1.Container{{Name: "app", Image: "scrapy"}, {Name: "metrics", Image: "exporter"}},
		},
	}
}

func env(c corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

func find(list []corev1.Container, name string) (corev1.Container, int) {
	for i, c := range list {
		if c.Name == name {
			return c, i
		}
	}
	return corev1.Container{}, -1
}

func mustMutate(t *testing.T, pod *corev1.Pod, cfg Config) {
	t.Helper()
	if skipped, err := Mutate(pod, cfg); err != nil || skipped != "" {
		t.Fatalf("Mutate: skipped %q, error %v", skipped, err)
	}
}

func TestNativeSidecar(t *testing.T) {
	pod := crawlerPod(nil)
	mustMutate(t, pod, testConfig())
	if len(pod.Spec.InitContainers) != 2 || pod.Spec.InitContainers[0].Name != ContainerName {
		t.Fatalf("want the sidecar first in initContainers, got %v", names(pod.Spec.InitContainers))
	}
	sc := pod.Spec.InitContainers[0]
	if sc.RestartPolicy == nil || *sc.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("native sidecar restartPolicy %v, want Always", sc.RestartPolicy)
	}
	if sc.StartupProbe == nil || sc.StartupProbe.HTTPGet.Path != "/readyz" || sc.StartupProbe.HTTPGet.Port.IntValue() != AdminPort {
		t.Errorf("startupProbe %+v, want GET /readyz on the admin port", sc.StartupProbe)
	}
	if sc.Lifecycle != nil {
		t.Errorf("native sidecar has a lifecycle hook: %+v", sc.Lifecycle)
	}
	if _, i := find(pod.Spec.Containers, ContainerName); i >= 0 {
		t.Error("sidecar also in containers")
	}
	checkSidecar(t, sc)
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers[1:], pod.Spec.Containers} {
		for _, c := range list {
			checkPointed(t, c, "")
		}
	}
	var st Status
	if err := json.Unmarshal([]byte(pod.Annotations[AnnotationStatus]), &st); err != nil || st.Mode != ModeNative ||
		strings.Join(st.Containers, ",") != "fetch-seeds,app,metrics" || st.Image != "registry.example/crawlpolite:v1" {
		t.Errorf("status annotation %q (%v)", pod.Annotations[AnnotationStatus], err)
	}
}

func TestLegacySidecar(t *testing.T) {
	for _, c := range []struct {
		name   string
		cfg    func(*Config)
		annots map[string]string
	}{
		{"mode legacy", func(c *Config) { c.Mode = ModeLegacy }, nil},
		{"auto without native sidecars", func(c *Config) { c.NativeSidecars = false }, nil},
		{"annotation", nil, map[string]string{AnnotationMode: "legacy"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			if c.cfg != nil {
				c.cfg(&cfg)
			}
			pod := crawlerPod(c.annots)
			mustMutate(t, pod, cfg)
			if pod.Spec.Containers[0].Name != ContainerName || len(pod.Spec.Containers) != 3 {
				t.Fatalf("want the sidecar first in containers, got %v", names(pod.Spec.Containers))
			}
			sc := pod.Spec.Containers[0]
			if sc.RestartPolicy != nil {
				t.Errorf("legacy sidecar has restartPolicy %v", *sc.RestartPolicy)
			}
			if sc.Lifecycle == nil || sc.Lifecycle.PostStart == nil || sc.Lifecycle.PostStart.Exec == nil ||
				strings.Join(sc.Lifecycle.PostStart.Exec.Command[:2], " ") != SidecarBinary+" wait-ready" {
				t.Errorf("legacy sidecar postStart %+v, want %s wait-ready", sc.Lifecycle, SidecarBinary)
			}
			checkSidecar(t, sc)
			if _, ok := env(pod.Spec.InitContainers[0], "HTTP_PROXY"); ok || len(pod.Spec.InitContainers) != 1 {
				t.Errorf("init containers run before a legacy sidecar: they must not be pointed at it: %+v", pod.Spec.InitContainers)
			}
			for _, c := range pod.Spec.Containers[1:] {
				checkPointed(t, c, "")
			}
		})
	}
}

// checkSidecar: restricted security context, the volumes mounted, the configuration passed.
func checkSidecar(t *testing.T, sc corev1.Container) {
	t.Helper()
	s := sc.SecurityContext
	if s == nil || !*s.RunAsNonRoot || !*s.ReadOnlyRootFilesystem || *s.AllowPrivilegeEscalation ||
		len(s.Capabilities.Drop) != 1 || s.Capabilities.Drop[0] != "ALL" || s.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("securityContext %+v is not restricted", s)
	}
	if sc.Image != "registry.example/crawlpolite:v1" {
		t.Errorf("image %q", sc.Image)
	}
	if v, _ := env(sc, "CRAWLPOLITE_POLICY_FILE"); v != policyDir+"/"+PolicyKey {
		t.Errorf("policy file %q", v)
	}
	if v, _ := env(sc, "CRAWLPOLITE_REDIS"); v != "redis://redis.crawlpolite:6379" {
		t.Errorf("redis %q", v)
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range sc.VolumeMounts {
		mounts[m.Name] = m
	}
	if m, ok := mounts[policyVolume]; !ok || !m.ReadOnly {
		t.Errorf("policy ConfigMap not mounted read-only: %+v", sc.VolumeMounts)
	}
	if m, ok := mounts[caVolume]; !ok || m.ReadOnly {
		t.Errorf("the sidecar must write the CA volume: %+v", sc.VolumeMounts)
	}
}

// checkPointed: the proxy env (unless the user set it: want names such a variable), the CA mounted read-only.
func checkPointed(t *testing.T, c corev1.Container, userSet string) {
	t.Helper()
	for _, name := range []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"} {
		if v, _ := env(c, name); v != "http://127.0.0.1:15080" && name != userSet {
			t.Errorf("%s: %s=%q", c.Name, name, v)
		}
	}
	// Only what was listed: a crawled link to loopback, a Service or a pod IP goes through the
	// sidecar's destination guard.
	if np, _ := env(c, "NO_PROXY"); np != ".internal.example" && userSet != "NO_PROXY" {
		t.Errorf("%s: NO_PROXY %q, want only the listed .internal.example", c.Name, np)
	}
	for _, name := range []string{"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"} {
		if v, _ := env(c, name); v != caDir+"/bundle.crt" {
			t.Errorf("%s: %s=%q", c.Name, name, v)
		}
	}
	if v, _ := env(c, "NODE_EXTRA_CA_CERTS"); v != caDir+"/ca.crt" {
		t.Errorf("%s: NODE_EXTRA_CA_CERTS=%q", c.Name, v)
	}
	found := false
	for _, m := range c.VolumeMounts {
		found = found || (m.Name == caVolume && m.ReadOnly && m.MountPath == caDir)
	}
	if !found {
		t.Errorf("%s: CA volume not mounted read-only at %s: %+v", c.Name, caDir, c.VolumeMounts)
	}
}

func TestUserEnvKept(t *testing.T) {
	pod := crawlerPod(nil)
	pod.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "HTTPS_PROXY", Value: "http://corp-proxy:3128"}, {Name: "NO_PROXY", Value: "corp.example"}}
	mustMutate(t, pod, testConfig())
	app, _ := find(pod.Spec.Containers, "app")
	if v, _ := env(app, "HTTPS_PROXY"); v != "http://corp-proxy:3128" {
		t.Errorf("user's HTTPS_PROXY replaced: %q", v)
	}
	if v, _ := env(app, "NO_PROXY"); v != "corp.example" {
		t.Errorf("user's NO_PROXY replaced: %q", v)
	}
	if v, _ := env(app, "HTTP_PROXY"); v != "http://127.0.0.1:15080" {
		t.Errorf("HTTP_PROXY %q, want the sidecar", v)
	}
	n := 0
	for _, e := range app.Env {
		if e.Name == "HTTPS_PROXY" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("HTTPS_PROXY set %d times", n)
	}
}

func TestIdempotent(t *testing.T) {
	for _, mode := range []Mode{ModeNative, ModeLegacy} {
		cfg := testConfig()
		cfg.Mode = mode
		once := crawlerPod(map[string]string{AnnotationNoProxy: "a.example"})
		mustMutate(t, once, cfg)
		twice := once.DeepCopy()
		mustMutate(t, twice, cfg)
		if !equality.Semantic.DeepEqual(once, twice) {
			t.Errorf("%s: injecting twice differs from once:\nonce  %+v\ntwice %+v", mode, once.Spec, twice.Spec)
		}
	}
}

// TestReinvocation: another webhook added a container after us; the reinvocation points it at the
// proxy and adds nothing else, whatever the mode now says.
func TestReinvocation(t *testing.T) {
	pod := crawlerPod(nil)
	mustMutate(t, pod, testConfig())
	pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "istio-proxy", Image: "istio"})
	pod.Spec.InitContainers = append(pod.Spec.InitContainers, corev1.Container{Name: "istio-init", Image: "istio"})
	cfg := testConfig()
	cfg.Mode = ModeLegacy // a sidecar in either list is found by name
	mustMutate(t, pod, cfg)
	if got := names(pod.Spec.InitContainers); got != "crawlpolite-proxy,fetch-seeds,istio-init" {
		t.Errorf("initContainers %s", got)
	}
	if got := names(pod.Spec.Containers); got != "app,metrics,istio-proxy" {
		t.Errorf("containers %s", got)
	}
	added, _ := find(pod.Spec.Containers, "istio-proxy")
	checkPointed(t, added, "")
	if len(pod.Spec.Volumes) != 2 {
		t.Errorf("volumes %+v", pod.Spec.Volumes)
	}
}

func TestSkipped(t *testing.T) {
	pod := crawlerPod(nil)
	pod.Spec.HostNetwork = true
	before := pod.DeepCopy()
	skipped, err := Mutate(pod, testConfig())
	if err != nil || !strings.Contains(skipped, "hostNetwork") {
		t.Fatalf("hostNetwork: skipped %q, err %v", skipped, err)
	}
	if !strings.Contains(pod.Annotations[AnnotationSkipped], "hostNetwork") {
		t.Errorf("no reason recorded: %v", pod.Annotations)
	}
	delete(pod.Annotations, AnnotationSkipped)
	if len(pod.Annotations) == 0 {
		pod.Annotations = nil
	}
	if !equality.Semantic.DeepEqual(before, pod) {
		t.Errorf("hostNetwork pod changed beyond the annotation: %+v", pod.Spec)
	}

	pod = crawlerPod(nil)
	pod.Namespace = "kube-system"
	before = pod.DeepCopy()
	if skipped, err := Mutate(pod, testConfig()); err != nil || skipped == "" || !equality.Semantic.DeepEqual(before, pod) {
		t.Errorf("excluded namespace: skipped %q, err %v, changed %v", skipped, err, !equality.Semantic.DeepEqual(before, pod))
	}
}

func TestAnnotations(t *testing.T) {
	good := []struct {
		key, value string
		check      func(t *testing.T, pod *corev1.Pod)
	}{
		{AnnotationImage, "mirror.example/crawlpolite:v2", func(t *testing.T, p *corev1.Pod) {
			if p.Spec.InitContainers[0].Image != "mirror.example/crawlpolite:v2" {
				t.Errorf("image %q", p.Spec.InitContainers[0].Image)
			}
		}},
		{AnnotationCPU, "100m", resourceIs(true, corev1.ResourceCPU, "100m")},
		{AnnotationMemory, "64Mi", resourceIs(true, corev1.ResourceMemory, "64Mi")},
		{AnnotationCPULimit, "2", resourceIs(false, corev1.ResourceCPU, "2")},
		{AnnotationMemLimit, "512Mi", resourceIs(false, corev1.ResourceMemory, "512Mi")},
		{AnnotationLogLevel, "debug", func(t *testing.T, p *corev1.Pod) {
			if v, _ := env(p.Spec.InitContainers[0], "CRAWLPOLITE_LOG_LEVEL"); v != "debug" {
				t.Errorf("log level %q", v)
			}
		}},
		{AnnotationMode, "native", func(t *testing.T, p *corev1.Pod) {
			if p.Spec.InitContainers[0].Name != ContainerName {
				t.Error("not native")
			}
		}},
		{AnnotationNoProxy, "internal.example, 192.168.0.0/16", func(t *testing.T, p *corev1.Pod) {
			v, _ := env(p.Spec.Containers[0], "no_proxy")
			if !strings.HasSuffix(v, ",internal.example,192.168.0.0/16") {
				t.Errorf("no_proxy %q", v)
			}
		}},
		{AnnotationExclude, "metrics,fetch-seeds", func(t *testing.T, p *corev1.Pod) {
			for _, c := range []corev1.Container{p.Spec.Containers[1], p.Spec.InitContainers[1]} {
				if len(c.Env) != 0 || len(c.VolumeMounts) != 0 {
					t.Errorf("excluded container %s changed: %+v", c.Name, c)
				}
			}
			checkPointed(t, p.Spec.Containers[0], "")
		}},
	}
	for _, g := range good {
		t.Run("good "+g.key, func(t *testing.T) {
			pod := crawlerPod(map[string]string{g.key: g.value})
			mustMutate(t, pod, testConfig())
			g.check(t, pod)
		})
	}
	bad := []struct{ key, value, reason string }{
		{AnnotationImage, "bad image", "image reference"},
		{AnnotationCPU, "lots", "positive quantity"},
		{AnnotationMemory, "-1Mi", "positive quantity"},
		{AnnotationCPU, "3", "above the limit"},
		{AnnotationLogLevel, "verbose", "debug, info, warn or error"},
		{AnnotationMode, "sometimes", "auto, native or legacy"},
		{AnnotationNoProxy, "a.example;b.example", "not a host"},
		{AnnotationExclude, "App_Container", "not a container name"},
		{"crawlpolite.io/proxy-imgae", "x", "unknown crawlpolite annotation"},
	}
	for _, b := range bad {
		t.Run("bad "+b.key, func(t *testing.T) {
			pod := crawlerPod(map[string]string{b.key: b.value})
			before := pod.DeepCopy()
			_, err := Mutate(pod, testConfig())
			var ae *AnnotationError
			if !errors.As(err, &ae) || !strings.Contains(err.Error(), b.reason) || !strings.Contains(err.Error(), "crawlpolite.io/") {
				t.Fatalf("want an annotation error naming the annotation and %q, got %v", b.reason, err)
			}
			if !equality.Semantic.DeepEqual(before, pod) {
				t.Error("a denied pod was changed")
			}
		})
	}
}

func resourceIs(request bool, name corev1.ResourceName, want string) func(*testing.T, *corev1.Pod) {
	return func(t *testing.T, p *corev1.Pod) {
		list := p.Spec.InitContainers[0].Resources.Limits
		if request {
			list = p.Spec.InitContainers[0].Resources.Requests
		}
		if q := list[name]; q.Cmp(resource.MustParse(want)) != 0 {
			t.Errorf("%s = %s, want %s", name, q.String(), want)
		}
	}
}

func names(list []corev1.Container) string {
	var s []string
	for _, c := range list {
		s = append(s, c.Name)
	}
	return strings.Join(s, ",")
}

// TestSidecarContract: what the sidecar container promises the image, the kubelet and the
// security model: its command named, the admin port clear of Envoy's 15090, GOMEMLIMIT's source
// injected, the Redis password only through a secretKeyRef.
func TestSidecarContract(t *testing.T) {
	c := testConfig()
	c.RedisPasswordSecret = "redis-auth"
	pod := crawlerPod(nil)
	mustMutate(t, pod, c)
	sc, _ := find(pod.Spec.InitContainers, ContainerName)
	if len(sc.Command) != 1 || sc.Command[0] != "/usr/local/bin/crawlpolite-sidecar" {
		t.Errorf("command %q, want the sidecar binary named", sc.Command)
	}
	if AdminPort != 15081 || !slices.Contains(sc.Args, "--admin-listen=:15081") || sc.Ports[0].ContainerPort != 15081 {
		t.Errorf("admin port: args %q ports %+v", sc.Args, sc.Ports)
	}
	refs := map[string]*corev1.EnvVarSource{}
	for _, e := range sc.Env {
		refs[e.Name] = e.ValueFrom
		if strings.Contains(strings.ToLower(e.Name), "password") && e.Value != "" {
			t.Errorf("%s is a plain value", e.Name)
		}
	}
	if r := refs["CRAWLPOLITE_MEMORY_LIMIT"]; r == nil || r.ResourceFieldRef == nil || r.ResourceFieldRef.Resource != "limits.memory" ||
		r.ResourceFieldRef.ContainerName != ContainerName {
		t.Errorf("CRAWLPOLITE_MEMORY_LIMIT source %+v", r)
	}
	if r := refs["CRAWLPOLITE_REDIS_PASSWORD"]; r == nil || r.SecretKeyRef == nil || r.SecretKeyRef.Name != RedisSecret ||
		r.SecretKeyRef.Key != "password" || (r.SecretKeyRef.Optional != nil && *r.SecretKeyRef.Optional) {
		t.Errorf("CRAWLPOLITE_REDIS_PASSWORD source %+v", r)
	}
	pod = crawlerPod(nil)
	mustMutate(t, pod, testConfig())
	sc, _ = find(pod.Spec.InitContainers, ContainerName)
	if _, ok := env(sc, "CRAWLPOLITE_REDIS_PASSWORD"); ok {
		t.Error("a password variable without a password secret")
	}
}

func TestRedisURLWithPasswordRefused(t *testing.T) {
	for _, u := range []string{"redis://:s3cr%zzet@redis:6379", "redis://user:s3cret@redis:6379", "redis+sentinel://s:26379/m?password=s3cret",
		"redis+sentinel://s:26379/m?sentinel_password=s3cret"} {
		c := testConfig()
		c.Redis = u
		err := c.Validate()
		if err == nil {
			t.Errorf("%s accepted", u)
			continue
		}
		if strings.Contains(err.Error(), "s3cr") {
			t.Errorf("the error repeats the password: %v", err)
		}
	}
	c := testConfig()
	c.Redis = "redis+cluster://user@a:6379,b:6379"
	if err := c.Validate(); err != nil {
		t.Errorf("a user name without a password: %v", err)
	}
}
