// Package config_test checks the kustomize bases: they build, and what they render is accepted by
// a real API server (the CRD installed for real, everything else applied server-side in dry-run).
package config_test

import (
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/crawlpolite/crawlpolite/internal/kubetest"
)

func build(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var out []*unstructured.Unstructured
	for _, r := range m.Resources() {
		b, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(b); err != nil {
			t.Fatal(err)
		}
		out = append(out, u)
	}
	return out
}

func kinds(objs []*unstructured.Unstructured) []string {
	var k []string
	for _, o := range objs {
		k = append(k, o.GetKind()+"/"+o.GetName())
	}
	slices.Sort(k)
	return k
}

func TestKustomizeBases(t *testing.T) {
	def := build(t, "default")
	want := []string{
		"ClusterRole/crawlpolite-webhook", "ClusterRoleBinding/crawlpolite-webhook", "CustomResourceDefinition/crawlpolicies.crawlpolite.io",
		"Deployment/crawlpolite-webhook", "MutatingWebhookConfiguration/crawlpolite", "Namespace/crawlpolite-system",
		"PodDisruptionBudget/crawlpolite-webhook", "Role/crawlpolite-webhook", "RoleBinding/crawlpolite-webhook",
		"Service/crawlpolite-webhook", "ServiceAccount/crawlpolite-webhook",
	}
	if got := kinds(def); !slices.Equal(got, want) {
		t.Errorf("config/default renders\n%v\nwant\n%v", got, want)
	}
	cm := build(t, "certmanager")
	for _, o := range cm {
		switch o.GetKind() {
		case "MutatingWebhookConfiguration":
			if o.GetAnnotations()["cert-manager.io/inject-ca-from"] != "crawlpolite-system/crawlpolite-webhook" {
				t.Errorf("certmanager overlay: webhook annotations %v", o.GetAnnotations())
			}
		case "Deployment":
			args, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			if c := args[0].(map[string]any); !slices.Contains(c["args"].([]any), any("--cert-mode=cert-manager")) {
				t.Errorf("certmanager overlay: manager args %v", c["args"])
			}
		}
	}

	// Everything config/default renders is valid for a real API server.
	c := kubetest.Client(t, kubetest.Start(t, &envtest.Environment{}))
	kubetest.Namespaces(t, c, "crawlpolite-system")
	ctx := t.Context()
	for _, o := range def {
		opts := []client.PatchOption{client.FieldOwner("config-test"), client.ForceOwnership}
		if o.GetKind() != "CustomResourceDefinition" {
			opts = append(opts, client.DryRunAll)
		}
		if err := c.Patch(ctx, o, client.Apply, opts...); err != nil { //nolint:staticcheck // unstructured apply
			t.Errorf("apply %s/%s: %v", o.GetKind(), o.GetName(), err)
		}
	}
}
