package inject

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Names shared with the controller (which writes the policy ConfigMap) and the manifests.
const (
	ContainerName   = "crawlpolite-proxy"
	PolicyConfigMap = "crawlpolite-policy" // in every namespace with injected pods
	PolicyKey       = "policy.yaml"
	InjectLabel     = "crawlpolite.io/inject" // = "enabled" opts a pod in
	ProxyPort       = 15080
	AdminPort       = 15081 // not 15090: that is Envoy's Prometheus port in Istio pods
	// RedisSecret is the Secret, in every namespace with injected pods, whose key RedisSecretKey
	// holds the Redis password. The controller copies it from the Secret named by
	// Config.RedisPasswordSecret in the manager's namespace.
	RedisSecret    = "crawlpolite-redis"
	RedisSecretKey = "password"

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
	Redis           string // the sidecar's --redis; empty for the in-process backend; never holds a password
	// RedisPasswordSecret, when set, is a Secret in the manager's namespace with the Redis password
	// under RedisSecretKey: sidecars read its copy (RedisSecret) through a secretKeyRef.
	RedisPasswordSecret string
	OnRedisDown         string // fail | local
	AllowCIDRs          []string

	// NoProxy is what the crawler reaches without the sidecar: the whole NO_PROXY, with the pods'
	// crawlpolite.io/no-proxy entries. Nothing is there by default (no loopback, .svc or cluster
	// CIDRs): a crawled link to an in-cluster address then meets the sidecar's destination guard.
	NoProxy []string

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
	case c.RedisPasswordSecret != "" && len(validation.IsDNS1123Subdomain(c.RedisPasswordSecret)) > 0:
		return fmt.Errorf("inject: redis password secret %q is not a Secret name", c.RedisPasswordSecret)
	}
	if err := redisURLWithoutPassword(c.Redis); err != nil {
		return err
	}
	for _, s := range c.AllowCIDRs {
		if _, err := netip.ParsePrefix(s); err != nil {
			return fmt.Errorf("inject: %q is not a CIDR", s)
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

// redisURLWithoutPassword refuses a Redis URL carrying a password: it would be a plain value in
// every pod spec (and in anything that prints pod specs). Its message never repeats the URL.
func redisURLWithoutPassword(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("inject: the redis URL does not parse")
	}
	if _, set := u.User.Password(); set || u.Query().Has("password") || u.Query().Has("sentinel_password") {
		return errors.New("inject: the redis URL holds a password: put it in a Secret and name it with --redis-password-secret")
	}
	return nil
}

// noProxy is the NO_PROXY value: what the crawler reaches without the sidecar (nothing unless
// listed).
func (c Config) noProxy(extra []string) string {
	var out []string
	for _, e := range append(slices.Clip(c.NoProxy), extra...) {
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return strings.Join(out, ",")
}
