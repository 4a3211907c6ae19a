package kubetest_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/crawlpolite/crawlpolite/internal/kubetest"
)

// TestStartServesRealAPI writes a ConfigMap through the real kube-apiserver and reads it back from
// etcd, and checks the server reports the Kubernetes version the binaries were built at.
func TestStartServesRealAPI(t *testing.T) {
	cfg := kubetest.Start(t, &envtest.Environment{})
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	want := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: "default"},
		Data:       map[string]string{"hello": "etcd"},
	}
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, want, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create: %v", err)
	}
	got, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "probe", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.Data["hello"] != "etcd" || got.UID == "" {
		t.Fatalf("read back %+v", got)
	}
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.Major != "1" || v.GitVersion == "v0.0.0-master" {
		t.Fatalf("server version %+v: binaries built without version ldflags", v)
	}
}
