package charttest

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// kustomize builds a config/ overlay.
func kustomize(t testing.TB, dir string) []*unstructured.Unstructured {
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

// field returns a copy of the value at path, its numbers as JSON decodes them (helm's output and
// kustomize's decode integers as different types).
func field(t testing.TB, o *unstructured.Unstructured, path ...string) any {
	t.Helper()
	v, ok, err := unstructured.NestedFieldNoCopy(o.Object, path...)
	if err != nil || !ok {
		t.Fatalf("%s/%s has no %v (%v)", o.GetKind(), o.GetName(), path, err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var n any
	if err := json.Unmarshal(b, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestChartAgreesWithConfig: rendered into config/'s namespace with the default values, the chart
// and config/default say the same about what decides who is injected and what the manager may do:
// the webhook's rules, selectors, failure policy and service; every RBAC rule and subject; the CRD
// (byte for byte); and the manager's command, ports and pod selector.
func TestChartAgreesWithConfig(t *testing.T) {
	chart := render(t, "crawlpolite-system", "defaults.yaml")
	config := kustomize(t, "../../config/default")

	same := func(kind, name string, path ...string) {
		t.Helper()
		c, k := field(t, find(t, chart, kind, name), path...), field(t, find(t, config, kind, name), path...)
		if !equality.Semantic.DeepEqual(c, k) {
			t.Errorf("%s/%s %v:\n chart  %v\n config %v", kind, name, path, c, k)
		}
	}
	hooks := func(o *unstructured.Unstructured) []any { return field(t, o, "webhooks").([]any) }
	ch, co := hooks(find(t, chart, "MutatingWebhookConfiguration", "crawlpolite")), hooks(find(t, config, "MutatingWebhookConfiguration", "crawlpolite"))
	if len(ch) != 1 || len(co) != 1 {
		t.Fatalf("webhooks: chart %d, config %d", len(ch), len(co))
	}
	for _, k := range []string{"name", "admissionReviewVersions", "rules", "objectSelector", "namespaceSelector", "failurePolicy",
		"sideEffects", "reinvocationPolicy", "matchPolicy", "timeoutSeconds", "clientConfig"} {
		if c, o := ch[0].(map[string]any)[k], co[0].(map[string]any)[k]; !equality.Semantic.DeepEqual(c, o) {
			t.Errorf("webhook %s:\n chart  %v\n config %v", k, c, o)
		}
	}
	for _, kind := range []string{"ClusterRole", "Role"} {
		same(kind, "crawlpolite-webhook", "rules")
	}
	for _, kind := range []string{"ClusterRoleBinding", "RoleBinding"} {
		same(kind, "crawlpolite-webhook", "subjects")
		same(kind, "crawlpolite-webhook", "roleRef")
	}
	same("Service", "crawlpolite-webhook", "spec", "ports")
	for _, p := range [][]string{{"command"}, {"ports"}, {"readinessProbe"}, {"livenessProbe"}, {"securityContext"}, {"volumeMounts"}} {
		c := field(t, find(t, chart, "Deployment", "crawlpolite-webhook"), "spec", "template", "spec", "containers").([]any)[0].(map[string]any)
		k := field(t, find(t, config, "Deployment", "crawlpolite-webhook"), "spec", "template", "spec", "containers").([]any)[0].(map[string]any)
		if p[0] == "volumeMounts" { // the chart adds the base policy's mount
			c[p[0]] = c[p[0]].([]any)[:1]
		}
		if !equality.Semantic.DeepEqual(c[p[0]], k[p[0]]) {
			t.Errorf("manager container %s:\n chart  %v\n config %v", p[0], c[p[0]], k[p[0]])
		}
	}
	// The Service and the webhook's objectSelector find the manager by app.kubernetes.io/name in both.
	cs := field(t, find(t, chart, "Service", "crawlpolite-webhook"), "spec", "selector").(map[string]any)
	ks := field(t, find(t, config, "Service", "crawlpolite-webhook"), "spec", "selector").(map[string]any)
	if cs["app.kubernetes.io/name"] != ks["app.kubernetes.io/name"] {
		t.Errorf("Service selector: chart %v, config %v", cs, ks)
	}

	// The chart's crds/ is config/crd/bases, byte for byte (make generate copies it).
	bases, err := filepath.Glob("../../config/crd/bases/*.yaml")
	if err != nil || len(bases) == 0 {
		t.Fatalf("config/crd/bases: %v %v", bases, err)
	}
	crds, _ := filepath.Glob(filepath.Join(chartDir, "crds/*.yaml"))
	if len(crds) != len(bases) {
		t.Errorf("chart crds/ has %d files, config/crd/bases %d: run make generate", len(crds), len(bases))
	}
	for _, b := range bases {
		want, err := os.ReadFile(b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(chartDir, "crds", filepath.Base(b)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("charts/crawlpolite/crds/%s differs from %s (%v): run make generate", filepath.Base(b), b, err)
		}
	}
}
