package charttest

import (
	"path/filepath"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/crawlpolite/crawlpolite/internal/kubetest"
)

const namespace = "crawlpolite" // the README's `helm install ... -n crawlpolite`

// TestChartOnAPIServer: one real kube-apiserver for the package. Every value set of the matrix, and
// config/default and config/dev, render objects it accepts; the manager's and bundled Redis's pods
// pass its Pod Security restricted admission; then, with the default render applied
// and the webhook binary running with the chart's Deployment arguments, a labelled pod comes back
// injected.
func TestChartOnAPIServer(t *testing.T) {
	defaults := render(t, namespace, "defaults.yaml")
	var mwc admissionregistrationv1.MutatingWebhookConfiguration
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(find(t, defaults, "MutatingWebhookConfiguration", release).Object, &mwc); err != nil {
		t.Fatal(err)
	}
	env := &envtest.Environment{
		// The chart's CRDs, and stand-ins for the Prometheus Operator's and cert-manager's (testdata/crds).
		CRDDirectoryPaths: []string{filepath.Join(chartDir, "crds"), "testdata/crds"},
		// The chart's own webhook configuration; envtest points it at a local URL with its own CA.
		WebhookInstallOptions: envtest.WebhookInstallOptions{MutatingWebhooks: []*admissionregistrationv1.MutatingWebhookConfiguration{&mwc}},
	}
	cfg := kubetest.Start(t, env)
	c := kubetest.Client(t, cfg)
	kubetest.Namespaces(t, c, namespace, "crawlpolite-system", "crawl")

	t.Run("matrix", func(t *testing.T) {
		sets, _ := filepath.Glob("testdata/values/*.yaml")
		for _, v := range sets {
			t.Run(strings.TrimSuffix(filepath.Base(v), ".yaml"), func(t *testing.T) {
				apply(t, c, render(t, namespace, filepath.Base(v)), client.DryRunAll)
			})
		}
	})
	t.Run("config", func(t *testing.T) {
		for _, dir := range []string{"default", "dev"} {
			apply(t, c, kustomize(t, "../../config/"+dir), client.DryRunAll)
		}
	})
	t.Run("pod security", func(t *testing.T) { testPodSecurity(t, c, defaults) })
	t.Run("injection", func(t *testing.T) { testInjection(t, cfg, c, env, defaults) })
}

// apply applies objs server-side (CRDs are already installed, so they are always dry runs; the
// webhook configuration, installed by envtest, is only ever applied in a dry run).
func apply(t *testing.T, c client.Client, objs []*unstructured.Unstructured, opts ...client.PatchOption) {
	t.Helper()
	if len(objs) == 0 {
		t.Fatal("nothing rendered")
	}
	for _, o := range objs {
		o := o.DeepCopy()
		po := append([]client.PatchOption{client.FieldOwner("charttest"), client.ForceOwnership}, opts...)
		switch o.GetKind() {
		case "CustomResourceDefinition":
			po = append(po, client.DryRunAll)
		case "MutatingWebhookConfiguration":
			// Under another name: applied over envtest's copy (which has a url), it would have both.
			o.SetName(o.GetName() + "-as-rendered")
		}
		if err := c.Patch(t.Context(), o, client.Apply, po...); err != nil { //nolint:staticcheck // unstructured apply
			t.Errorf("apply %s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
	}
}
