// Package kubetest starts a real kube-apiserver and etcd for tests through controller-runtime's
// envtest, using the binaries hack/test-deps.sh builds from the Go module proxy (found through
// KUBEBUILDER_ASSETS). It knows nothing of crawlpolite's resources; callers pass CRD directories and
// webhook configurations.
//
// Without KUBEBUILDER_ASSETS the test is skipped, unless CI is set, where it fails.
package kubetest
