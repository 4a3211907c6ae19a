// Package v1alpha1 is the crawlpolite.io/v1alpha1 API: CrawlPolicy, the cluster-scoped per-host
// politeness rules that the controller compiles, with the Helm/flag defaults, into the policy
// document every sidecar reads. It imports apimachinery only.
//
// +kubebuilder:object:generate=true
// +groupName=crawlpolite.io
package v1alpha1

//go:generate controller-gen object paths=. crd:crdVersions=v1 output:crd:artifacts:config=../../config/crd/bases
