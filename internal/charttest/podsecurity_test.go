package charttest

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// testPodSecurity: the README says the release's namespace may enforce Pod Security restricted.
// The API server's own PodSecurity admission judges the pods of the manager's and the bundled
// Redis's Deployments, created (dry run) in a namespace that enforces it.
func testPodSecurity(t *testing.T, c client.Client, objs []*unstructured.Unstructured) {
	ctx := t.Context()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "restricted", Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest"}}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	// A pod the profile refuses, so a pass below means the admission ran.
	bad := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "root"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}}}
	if err := c.Create(ctx, bad, client.DryRunAll); err == nil {
		t.Fatal("the API server enforces no Pod Security here: a pod without a securityContext was admitted")
	}
	for _, name := range []string{release + "-webhook", release + "-redis"} {
		var d appsv1.Deployment
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(find(t, objs, "Deployment", name).Object, &d); err != nil {
			t.Fatal(err)
		}
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: name, Labels: d.Spec.Template.Labels},
			Spec: d.Spec.Template.Spec}
		if err := c.Create(ctx, p, client.DryRunAll); err != nil {
			t.Errorf("Deployment %s's pod under Pod Security restricted: %v", name, err)
		}
	}
}
