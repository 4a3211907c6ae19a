package kubetest

import (
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Start starts env (a zero Environment is fine) on the binaries in KUBEBUILDER_ASSETS and stops it
// when the test ends. It returns the REST config of an admin user.
func Start(t testing.TB, env *envtest.Environment) *rest.Config {
	t.Helper()
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" || !hasBinaries(assets) {
		msg := "kubetest: KUBEBUILDER_ASSETS does not name a directory with kube-apiserver and etcd; " +
			"run `eval $(hack/test-deps.sh kube)` or `make test`"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	env.BinaryAssetsDirectory = assets
	env.ErrorIfCRDPathMissing = true
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("kubetest: start envtest: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("kubetest: stop envtest: %v", err)
		}
	})
	return cfg
}

func hasBinaries(dir string) bool {
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if st, err := os.Stat(filepath.Join(dir, b)); err != nil || st.IsDir() {
			return false
		}
	}
	return true
}
