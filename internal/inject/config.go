package inject

import (
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Names shared with the controller (which writes the policy ConfigMap) and the manifests.
const (
	ContainerName   = "crawlpolite-proxy"
	PolicyConfigMap = "crawlpolite-policy" // in every namespace with injected pods
	PolicyKey       = "policy.yaml"
	InjectLabel     = "crawlpolite.io/inject" // = "enabled" opts a pod in
	ProxyPort       = 15080
	AdminPort       = 15090

	caVolume     = "crawlpolite-ca"
	policyVolume = "crawlpolite-policy"
	caDir        = "/etc/crawlpolite/ca"
	policyDir    = "/etc/crawlpolite/policy"
	// SidecarBinary is the sidecar's path in the image (see the Dockerfile).
	SidecarBinary = "/usr/local/bin/crawlpolite-sidecar"
)

// Mode is how the sidecar is added.
type Mode string

const (
	// ModeAuto is native where the cluster supports it (Kubernetes 1.29+), else legacy.
	ModeAuto Mode = "auto"
	// ModeNative adds the sidecar first in initContainers with restartPolicy Always: it starts
	// before every other container and does not keep Jobs from completing.
	ModeNative Mode = "native"
	// ModeLegacy adds it as the first regular container, whose postStart waits until it is ready;
	// the app calls POST /quitquitquit on the admin port when done.
	ModeLegacy Mode = "legacy"
)

// Config is the injector's configuration (the webhook's flags, from Helm values).
type Config struct {
	Image           string
	ImagePullPolicy corev1.PullPolicy
	Resources       corev1.ResourceRequirements
	Mode            Mode
	NativeSidecars  bool   // the cluster runs native sidecars (decides ModeAuto)
	LogLevel        string // debug | info | warn | error
	Redis           string // the sidecar's --redis; empty for the in-process backend
	OnRedisDown     string // fail | local
	AllowCIDRs      []string

	// NO_PROXY: besides localhost and loopback, what the crawler reaches directly.
	ClusterDomain string   // e.g. cluster.local
	APIServer     string   // the API server's host, when not inside ServiceCIDRs
	ServiceCIDRs  []string // e.g. 10.96.0.0/12
	PodCIDRs      []string
	NoProxy       []string // extra entries

	// ExcludedNamespaces never get a sidecar, whatever the pod says (the webhook configuration
	// excludes them too).
	ExcludedNamespaces []string
}

// DefaultConfig is the injector's configuration when nothing is set.
func DefaultConfig() Config {
	return Config{
		Image:           "ghcr.io/crawlpolite/crawlpolite:latest",
		ImagePullPolicy: corev1.PullIfNotPresent,
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("20m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("256Mi")},
		},
		Mode:               ModeAuto,
		NativeSidecars:     true,
		LogLevel:           "info",
		OnRedisDown:        "fail",
		ClusterDomain:      "cluster.local",
		ExcludedNamespaces: []string{"kube-system", "kube-public", "kube-node-lease"},
	}
}

// Validate reports the first bad setting.
func (c Config) Validate() error {
	switch {
	case c.Image == "" || strings.ContainsAny(c.Image, " \t\n"):
		return fmt.Errorf("inject: image %q is not an image reference", c.Image)
	case !validMode(string(c.Mode)):
		return fmt.Errorf("inject: mode %q must be auto, native or legacy", c.Mode)
	case !validLogLevel(c.LogLevel):
		return fmt.Errorf("inject: log level %q must be debug, info, warn or error", c.LogLevel)
	case c.OnRedisDown != "fail" && c.OnRedisDown != "local":
		return fmt.Errorf("inject: on-redis-down %q must be fail or local", c.OnRedisDown)
	}
	for _, cidrs := range [][]string{c.ServiceCIDRs, c.PodCIDRs, c.AllowCIDRs} {
		for _, s := range cidrs {
			if _, err := netip.ParsePrefix(s); err != nil {
				return fmt.Errorf("inject: %q is not a CIDR", s)
			}
		}
	}
	for _, e := range c.NoProxy {
		if err := noProxyEntry(e); err != nil {
			return fmt.Errorf("inject: no-proxy: %w", err)
		}
	}
	return nil
}

func validMode(m string) bool {
	return m == string(ModeAuto) || m == string(ModeNative) || m == string(ModeLegacy)
}

func validLogLevel(l string) bool { return l == "debug" || l == "info" || l == "warn" || l == "error" }

func noProxyEntry(e string) error {
	if e == "" || strings.ContainsAny(e, " \t\n,;") {
		return fmt.Errorf("%q is not a host, domain or CIDR", e)
	}
	return nil
}

// noProxy is the NO_PROXY value: what the crawler reaches without the sidecar.
func (c Config) noProxy(extra []string) string {
	list := []string{"localhost", "127.0.0.1", "::1", ".svc"}
	if c.ClusterDomain != "" {
		list = append(list, "."+strings.TrimPrefix(c.ClusterDomain, "."))
	}
	if c.APIServer != "" {
		list = append(list, c.APIServer)
	}
	list = append(list, c.ServiceCIDRs...)
	list = append(list, c.PodCIDRs...)
	list = append(list, c.NoProxy...)
	list = append(list, extra...)
	seen := map[string]bool{}
	out := list[:0]
	for _, e := range list {
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	return strings.Join(out, ",")
}
