package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/crawlpolite/crawlpolite/internal/controller"
	"github.com/crawlpolite/crawlpolite/internal/inject"
	"github.com/crawlpolite/crawlpolite/internal/policy"
)

// Options are the manager's settings (flags; the Helm chart sets them from values).
type Options struct {
	MetricsAddr, ProbeAddr string
	WebhookHost            string
	WebhookPort            int
	CertDir                string
	CertMode               string // self | cert-manager | external
	Namespace              string // the manager's own
	ServiceName            string
	WebhookConfigName      string
	SecretName             string
	LeaderElect            bool
	BasePolicyFile         string
	LogLevel               string
	Kubeconfig             string
	CleanupGrace           time.Duration
	// skipNameValidation lets tests run several managers in one process.
	skipNameValidation bool

	Inject inject.Config
	Base   policy.Document
}

type listFlag struct{ dst *[]string }

func (l listFlag) String() string {
	if l.dst == nil {
		return ""
	}
	return strings.Join(*l.dst, ",")
}

func (l listFlag) Set(v string) error {
	*l.dst = nil
	for _, e := range strings.Split(v, ",") {
		if e = strings.TrimSpace(e); e != "" {
			*l.dst = append(*l.dst, e)
		}
	}
	return nil
}

type quantityFlag struct {
	list *corev1.ResourceList
	name corev1.ResourceName
}

func (q quantityFlag) String() string {
	if q.list == nil {
		return ""
	}
	v := (*q.list)[q.name]
	return v.String()
}

func (q quantityFlag) Set(v string) error {
	p, err := resource.ParseQuantity(v)
	if err != nil {
		return err
	}
	(*q.list)[q.name] = p
	return nil
}

func parseOptions(args []string) (Options, error) {
	o := Options{Inject: inject.DefaultConfig()}
	fs := flag.NewFlagSet("crawlpolite-webhook", flag.ContinueOnError)
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", ":8080", "metrics address; 0 disables")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8081", "/healthz and /readyz address")
	fs.StringVar(&o.WebhookHost, "webhook-host", "", "address the webhook server listens on (all when empty)")
	fs.IntVar(&o.WebhookPort, "webhook-port", 9443, "webhook server port")
	fs.StringVar(&o.CertDir, "cert-dir", "/tmp/k8s-webhook-server/serving-certs", "directory with tls.crt and tls.key (reloaded when they change)")
	fs.StringVar(&o.CertMode, "cert-mode", "self", "self (the manager issues, rotates and publishes its certificate), cert-manager (cainjector publishes it, the Secret is mounted) or external (mounted, caBundle set by you)")
	fs.StringVar(&o.Namespace, "namespace", os.Getenv("POD_NAMESPACE"), "the manager's namespace (never injected)")
	fs.StringVar(&o.ServiceName, "service-name", "crawlpolite-webhook", "the webhook's Service (the certificate's name)")
	fs.StringVar(&o.WebhookConfigName, "webhook-config-name", "crawlpolite", "MutatingWebhookConfiguration whose caBundle --cert-mode=self keeps current")
	fs.StringVar(&o.SecretName, "secret-name", "crawlpolite-webhook-tls", "Secret holding the CA and serving certificate in --cert-mode=self")
	fs.BoolVar(&o.LeaderElect, "leader-elect", true, "elect one replica to run the policy controller (every replica serves the webhook)")
	fs.StringVar(&o.BasePolicyFile, "base-policy", "", "policy document whose defaults (and rules) come before every CrawlPolicy; empty for the built-in defaults")
	fs.StringVar(&o.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig file; empty for $KUBECONFIG or the in-cluster configuration")

	c := &o.Inject
	fs.StringVar(&c.Image, "sidecar-image", c.Image, "sidecar image")
	fs.StringVar((*string)(&c.ImagePullPolicy), "sidecar-pull-policy", string(c.ImagePullPolicy), "sidecar imagePullPolicy")
	fs.Var(quantityFlag{&c.Resources.Requests, corev1.ResourceCPU}, "sidecar-cpu", "sidecar CPU request")
	fs.Var(quantityFlag{&c.Resources.Requests, corev1.ResourceMemory}, "sidecar-memory", "sidecar memory request")
	fs.Var(quantityFlag{&c.Resources.Limits, corev1.ResourceCPU}, "sidecar-cpu-limit", "sidecar CPU limit (also its GOMAXPROCS, rounded up)")
	fs.Var(quantityFlag{&c.Resources.Limits, corev1.ResourceMemory}, "sidecar-memory-limit", "sidecar memory limit")
	fs.StringVar((*string)(&c.Mode), "mode", string(c.Mode), "auto (native sidecar on Kubernetes 1.29+, else legacy), native or legacy")
	fs.StringVar(&c.LogLevel, "sidecar-log-level", c.LogLevel, "sidecar log level")
	fs.StringVar(&c.Redis, "redis", "", "the sidecars' shared Redis URL; empty gives each pod its own in-process semaphore")
	fs.StringVar(&c.OnRedisDown, "on-redis-down", c.OnRedisDown, "the sidecars' behaviour when Redis is unreachable: fail or local")
	fs.Var(listFlag{&c.AllowCIDRs}, "allow-cidr", "comma-separated private destination ranges the sidecars may reach")
	fs.StringVar(&c.RedisPasswordSecret, "redis-password-secret", "", "Secret in the manager's namespace whose key `password` is the Redis password; the controller copies it to each namespace with injected pods, the sidecars read it through a secretKeyRef")
	fs.Var(listFlag{&c.NoProxy}, "no-proxy", "comma-separated NO_PROXY entries: hosts, domains or CIDRs crawlers reach without the sidecar (nothing by default, not even loopback)")
	fs.DurationVar(&o.CleanupGrace, "cleanup-grace", controller.DefaultCleanupGrace, "how long a namespace keeps its policy ConfigMap and Redis Secret after its last injected pod is gone or finished")
	var excluded []string
	fs.Var(listFlag{&excluded}, "exclude-namespaces", "comma-separated namespaces never injected, besides kube-system, kube-public, kube-node-lease and the manager's own")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var errs []error
	if o.Namespace == "" {
		errs = append(errs, errors.New("--namespace (or POD_NAMESPACE) is required"))
	}
	if o.CertMode != "self" && o.CertMode != "cert-manager" && o.CertMode != "external" {
		errs = append(errs, fmt.Errorf("--cert-mode=%q: want self, cert-manager or external", o.CertMode))
	}
	c.ExcludedNamespaces = append(append(c.ExcludedNamespaces, excluded...), o.Namespace)
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	if o.BasePolicyFile != "" {
		data, err := os.ReadFile(o.BasePolicyFile)
		if err == nil {
			o.Base, err = policy.ParseDocument(data)
		}
		if err == nil {
			_, err = o.Base.Compile()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("--base-policy: %w", err))
		}
	}
	return o, errors.Join(errs...)
}
