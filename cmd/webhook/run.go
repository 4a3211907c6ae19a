package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	kversion "k8s.io/apimachinery/pkg/util/version"
	"k8s.io/client-go/discovery"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/crawlpolite/crawlpolite/api/v1alpha1"
	"github.com/crawlpolite/crawlpolite/internal/certs"
	"github.com/crawlpolite/crawlpolite/internal/controller"
	"github.com/crawlpolite/crawlpolite/internal/inject"
)

func run(ctx context.Context, o Options) error {
	cfg, err := restConfig(o.Kubeconfig)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, o)
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		return clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	return ctrl.GetConfig()
}

// serve runs the webhook and the controller against cfg's cluster until ctx ends.
func serve(ctx context.Context, cfg *rest.Config, o Options) error {
	log := logr.FromSlogHandler(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slogLevel(o.LogLevel)}))
	ctrl.SetLogger(log)
	ctx = logr.NewContext(ctx, log)

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	if o.Inject.Mode == inject.ModeAuto {
		native, err := nativeSidecars(cfg)
		if err != nil {
			return err
		}
		o.Inject.NativeSidecars = native
	}
	var self *certs.Self
	if o.CertMode == "self" {
		direct, err := client.New(cfg, client.Options{Scheme: scheme})
		if err != nil {
			return err
		}
		self = &certs.Self{Client: direct, Namespace: o.Namespace, SecretName: o.SecretName, Service: o.ServiceName,
			WebhookConfig: o.WebhookConfigName, CertDir: o.CertDir, Validity: certValidity}
		// Before the webhook server starts: it needs the files.
		if err := self.Ensure(ctx); err != nil {
			return err
		}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Cache:                   controller.CacheOptions(o.Namespace, o.Inject.RedisPasswordSecret),
		Metrics:                 metricsserver.Options{BindAddress: o.MetricsAddr},
		HealthProbeBindAddress:  o.ProbeAddr,
		LeaderElection:          o.LeaderElect,
		LeaderElectionID:        "crawlpolite-controller",
		LeaderElectionNamespace: o.Namespace,
		Controller:              ctrlconfig.Controller{SkipNameValidation: &o.skipNameValidation},
		WebhookServer:           webhook.NewServer(webhook.Options{Host: o.WebhookHost, Port: o.WebhookPort, CertDir: o.CertDir}),
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	if self != nil {
		if err := mgr.Add(self); err != nil {
			return err
		}
	}
	if err := (&inject.Webhook{Config: o.Inject}).Setup(mgr); err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	rec := &controller.Reconciler{Client: mgr.GetClient(), Base: o.Base, ExcludedNamespaces: o.Inject.ExcludedNamespaces,
		CleanupGrace: o.CleanupGrace}
	if o.Inject.RedisPasswordSecret != "" {
		rec.RedisSecret = types.NamespacedName{Namespace: o.Namespace, Name: o.Inject.RedisPasswordSecret}
	}
	if err := rec.Setup(mgr); err != nil {
		return fmt.Errorf("controller: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("webhook", mgr.GetWebhookServer().StartedChecker()); err != nil {
		return err
	}
	log.Info("starting", "version", version, "namespace", o.Namespace, "certMode", o.CertMode, "mode", o.Inject.Mode, "nativeSidecars", o.Inject.NativeSidecars)
	return mgr.Start(ctx)
}

// nativeSidecars reports whether the cluster runs native sidecars (on by default from 1.29).
func nativeSidecars(cfg *rest.Config) (bool, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return false, err
	}
	info, err := dc.ServerVersion()
	if err != nil {
		return false, fmt.Errorf("server version: %w", err)
	}
	v, err := kversion.ParseGeneric(info.GitVersion)
	if err != nil {
		return false, fmt.Errorf("server version %q: %w", info.GitVersion, err)
	}
	return v.AtLeast(kversion.MajorMinor(1, 29)), nil
}

func slogLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}
