// Package charttest checks what crawlpolite ships: the Helm chart (charts/crawlpolite), the kustomize
// overlays it must agree with (config/), and the binaries the image (Dockerfile) holds.
//
// Everything runs for real: the chart is rendered by the pinned helm binary over a matrix of value
// sets and applied to a real kube-apiserver and etcd (internal/kubetest); the webhook binary is built
// and started with the chart's Deployment arguments, with an empty environment, and a labelled pod
// created through the API server must come back injected. The image itself cannot be built here (no
// container engine), so the binaries are built the way the Dockerfile builds them and checked to be
// static and to start with nothing around them.
//
// It holds tests only: of crawlpolite's own code it imports the names the pieces share
// (internal/inject), the policy parser and internal/kubetest, and nothing imports it. helm and
// helm-docs come from hack/test-deps.sh (PATH); without them the tests that need them are skipped,
// unless CI is set, where they fail. The binaries are built once per run of the package, and one
// kube-apiserver serves every test that needs one (TestChartOnAPIServer and its subtests).
package charttest
