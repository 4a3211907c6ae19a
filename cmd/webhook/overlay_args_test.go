package main

import (
	"net/url"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// TestOverlayManifestArgs: every kustomize overlay of config/, built as `kubectl apply -k` builds
// it (patches applied), gives the manager arguments this binary accepts; the dev overlay's name
// the Redis Service and password Secret it ships, in the manager's namespace.
func TestOverlayManifestArgs(t *testing.T) {
	for _, c := range []struct {
		overlay string
		want    []string // arguments the overlay must pass
	}{
		{"default", nil},
		{"certmanager", []string{"--cert-mode=cert-manager"}},
		{"dev", []string{"--cert-mode=self", "--redis-password-secret=crawlpolite-redis-auth"}},
	} {
		t.Run(c.overlay, func(t *testing.T) {
			m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), "../../config/"+c.overlay)
			if err != nil {
				t.Fatalf("kustomize build config/%s: %v", c.overlay, err)
			}
			services, secrets := map[string]bool{}, map[string]bool{}
			var manager *appsv1.Deployment
			for _, r := range m.Resources() {
				key := r.GetNamespace() + "/" + r.GetName()
				switch r.GetKind() {
				case "Service":
					services[key] = true
				case "Secret":
					secrets[key] = true
				case "Deployment":
					b, err := r.AsYAML()
					if err != nil {
						t.Fatal(err)
					}
					var d appsv1.Deployment
					if err := yaml.Unmarshal(b, &d); err != nil {
						t.Fatal(err)
					}
					if d.Name == "crawlpolite-webhook" {
						manager = &d
					}
				}
			}
			if manager == nil || len(manager.Spec.Template.Spec.Containers) == 0 {
				t.Fatalf("config/%s: no crawlpolite-webhook Deployment with a container", c.overlay)
			}
			args := manager.Spec.Template.Spec.Containers[0].Args
			o, err := parseOptions(append(args, "--namespace="+manager.Namespace))
			if err != nil {
				t.Fatalf("config/%s: args %v: %v", c.overlay, args, err)
			}
			for _, w := range c.want {
				if !strings.Contains(strings.Join(args, " "), w) {
					t.Errorf("config/%s: args lack %s: %v", c.overlay, w, args)
				}
			}
			if s := o.Inject.RedisPasswordSecret; s != "" && !secrets[manager.Namespace+"/"+s] {
				t.Errorf("config/%s: --redis-password-secret=%s is no Secret of the overlay in %s", c.overlay, s, manager.Namespace)
			}
			if o.Inject.Redis == "" {
				return
			}
			u, err := url.Parse(o.Inject.Redis)
			if err != nil {
				t.Fatal(err)
			}
			// <service>.<namespace>.svc[.cluster.local]
			if parts := strings.Split(u.Hostname(), "."); len(parts) < 3 || parts[2] != "svc" || !services[parts[1]+"/"+parts[0]] {
				t.Errorf("config/%s: --redis=%s names no Service of the overlay", c.overlay, o.Inject.Redis)
			}
		})
	}
}
