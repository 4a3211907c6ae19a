package inject

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Status is what the injector records in the pod's status annotation.
type Status struct {
	Mode       Mode     `json:"mode"`
	Image      string   `json:"image"`
	Containers []string `json:"containers"` // app and init containers pointed at the proxy
}

// Mutate adds the sidecar to pod as cfg and the pod's annotations say. It returns a reason, and
// leaves the pod untouched, when the pod is not to be injected (hostNetwork, an excluded
// namespace), and an *AnnotationError when an annotation is bad. Mutate(Mutate(p)) == Mutate(p).
func Mutate(pod *corev1.Pod, cfg Config) (skipped string, err error) {
	if slices.Contains(cfg.ExcludedNamespaces, pod.Namespace) {
		return "namespace " + pod.Namespace + " is excluded from injection", nil
	}
	o, err := parseAnnotations(pod, cfg)
	if err != nil {
		return "", err
	}
	if pod.Spec.HostNetwork {
		reason := "hostNetwork pods share the node's network namespace: a proxy on 127.0.0.1 would be the node's, so none is injected"
		setAnnotation(pod, AnnotationSkipped, reason)
		return reason, nil
	}
	c := o.cfg
	mode := c.Mode
	if mode == ModeAuto {
		mode = ModeLegacy
		if c.NativeSidecars {
			mode = ModeNative
		}
	}
	// The sidecar is found by name in both lists: a reinvocation, or a pod whose mode changed
	// between invocations, never gets a second one.
	if !hasContainer(pod.Spec.InitContainers) && !hasContainer(pod.Spec.Containers) {
		sc := sidecar(c, mode)
		if mode == ModeNative {
			pod.Spec.InitContainers = append([]corev1.Container{sc}, pod.Spec.InitContainers...)
		} else {
			pod.Spec.Containers = append([]corev1.Container{sc}, pod.Spec.Containers...)
		}
	}
	addVolume(pod, corev1.Volume{Name: caVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
		Medium: corev1.StorageMediumMemory, SizeLimit: ptr(resource.MustParse("4Mi"))}}})
	// Not optional: a pod whose namespace has no policy yet waits for the controller to deliver it
	// rather than crawl under defaults nobody chose.
	addVolume(pod, corev1.Volume{Name: policyVolume, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: PolicyConfigMap}}}})

	st := Status{Mode: mode, Image: c.Image}
	env := proxyEnv(c.noProxy(o.noProxy))
	point := func(list []corev1.Container) {
		for i := range list {
			ct := &list[i]
			if ct.Name == ContainerName || o.excluded(ct.Name) {
				continue
			}
			for _, e := range env {
				if !hasEnv(ct, e.Name) {
					ct.Env = append(ct.Env, e)
				}
			}
			if !hasMount(ct, caVolume) {
				ct.VolumeMounts = append(ct.VolumeMounts, corev1.VolumeMount{Name: caVolume, MountPath: caDir, ReadOnly: true})
			}
			st.Containers = append(st.Containers, ct.Name)
		}
	}
	// Init containers run after a native sidecar has started; before a legacy one they would
	// find no proxy, so they are left alone.
	if mode == ModeNative {
		point(pod.Spec.InitContainers)
	}
	point(pod.Spec.Containers)
	b, _ := json.Marshal(st)
	setAnnotation(pod, AnnotationStatus, string(b))
	return "", nil
}

// proxyEnv is what every app container gets, unless it sets the variable itself.
func proxyEnv(noProxy string) []corev1.EnvVar {
	proxy := "http://127.0.0.1:" + strconv.Itoa(ProxyPort)
	bundle := caDir + "/bundle.crt"
	return []corev1.EnvVar{
		{Name: "HTTP_PROXY", Value: proxy}, {Name: "http_proxy", Value: proxy},
		{Name: "HTTPS_PROXY", Value: proxy}, {Name: "https_proxy", Value: proxy},
		{Name: "NO_PROXY", Value: noProxy}, {Name: "no_proxy", Value: noProxy},
		{Name: "SSL_CERT_FILE", Value: bundle},      // Go, OpenSSL, Python ssl
		{Name: "REQUESTS_CA_BUNDLE", Value: bundle}, // Python requests
		{Name: "CURL_CA_BUNDLE", Value: bundle},     // curl
		// Node.js adds these to its own roots, so the CA alone.
		{Name: "NODE_EXTRA_CA_CERTS", Value: caDir + "/ca.crt"},
	}
}

// sidecar is the proxy container.
func sidecar(c Config, mode Mode) corev1.Container {
	admin := intstr.FromInt32(AdminPort)
	ct := corev1.Container{
		Name:            ContainerName,
		Image:           c.Image,
		ImagePullPolicy: c.ImagePullPolicy,
		// Named, not left to the image's ENTRYPOINT: one image holds several programs.
		Command: []string{SidecarBinary},
		Args:    []string{fmt.Sprintf("--listen=127.0.0.1:%d", ProxyPort), fmt.Sprintf("--admin-listen=:%d", AdminPort)},
		Env: []corev1.EnvVar{
			{Name: "CRAWLPOLITE_POLICY_FILE", Value: policyDir + "/" + PolicyKey},
			{Name: "CRAWLPOLITE_CA_DIR", Value: caDir},
			{Name: "CRAWLPOLITE_LOG_LEVEL", Value: c.LogLevel},
			{Name: "CRAWLPOLITE_REDIS", Value: c.Redis},
			{Name: "CRAWLPOLITE_ON_REDIS_DOWN", Value: c.OnRedisDown},
			{Name: "CRAWLPOLITE_ALLOW_CIDR", Value: strings.Join(c.AllowCIDRs, ",")},
			// One P per CPU of the limit (at least one): no idle threads spinning on the crawler's node.
			{Name: "GOMAXPROCS", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{
				ContainerName: ContainerName, Resource: "limits.cpu", Divisor: resource.MustParse("1")}}},
			// The sidecar keeps its heap under 80% of this (GOMEMLIMIT) and sizes its robots cache from it.
			{Name: "CRAWLPOLITE_MEMORY_LIMIT", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{
				ContainerName: ContainerName, Resource: "limits.memory", Divisor: resource.MustParse("1")}}},
		},
		Ports:     []corev1.ContainerPort{{Name: "cp-admin", ContainerPort: AdminPort, Protocol: corev1.ProtocolTCP}},
		Resources: c.Resources,
		VolumeMounts: []corev1.VolumeMount{
			{Name: caVolume, MountPath: caDir},
			{Name: policyVolume, MountPath: policyDir, ReadOnly: true},
		},
		StartupProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: admin}},
			PeriodSeconds: 1, FailureThreshold: 120, TimeoutSeconds: 1},
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: admin}},
			PeriodSeconds: 5, FailureThreshold: 2, TimeoutSeconds: 2},
		LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: admin}},
			PeriodSeconds: 10, FailureThreshold: 3, TimeoutSeconds: 2},
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot:             ptr(true),
			RunAsUser:                ptr(int64(65532)),
			RunAsGroup:               ptr(int64(65532)),
			ReadOnlyRootFilesystem:   ptr(true),
			AllowPrivilegeEscalation: ptr(false),
			Privileged:               ptr(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
	if c.RedisPasswordSecret != "" {
		// Not optional: a sidecar without its password would only fail to authenticate.
		ct.Env = append(ct.Env, corev1.EnvVar{Name: "CRAWLPOLITE_REDIS_PASSWORD", ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: RedisSecret}, Key: RedisSecretKey}}})
	}
	switch mode {
	case ModeNative:
		ct.RestartPolicy = ptr(corev1.ContainerRestartPolicyAlways)
	case ModeLegacy:
		// The app containers start after this hook returns: only once the proxy is ready.
		ct.Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{
			Command: []string{SidecarBinary, "wait-ready", fmt.Sprintf("--admin-listen=127.0.0.1:%d", AdminPort), "--timeout=120s"}}}}
	}
	return ct
}

func hasContainer(list []corev1.Container) bool {
	return slices.ContainsFunc(list, func(c corev1.Container) bool { return c.Name == ContainerName })
}

func hasEnv(c *corev1.Container, name string) bool {
	return slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == name })
}

func hasMount(c *corev1.Container, volume string) bool {
	return slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == volume })
}

func addVolume(pod *corev1.Pod, v corev1.Volume) {
	if !slices.ContainsFunc(pod.Spec.Volumes, func(x corev1.Volume) bool { return x.Name == v.Name }) {
		pod.Spec.Volumes = append(pod.Spec.Volumes, v)
	}
}

func setAnnotation(pod *corev1.Pod, k, v string) {
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[k] = v
}

func ptr[T any](v T) *T { return &v }
