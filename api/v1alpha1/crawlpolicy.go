package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Duration is a Go duration string: "250ms", "1s", "1m30s".
// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
// +kubebuilder:validation:MaxLength=32
// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s')",message="must be a duration such as 250ms, 1s or 1m30s"
type Duration string

// HostPattern names hosts: "example.com" (any port), "example.com:8443" (one port),
// "*.example.org" (subdomains only, any port).
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=260
// +kubebuilder:validation:Pattern=`^((\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$`
type HostPattern string

// Rule applies limits to the hosts its patterns match. Unset fields inherit the defaults.
// +kubebuilder:validation:XValidation:rule="!has(self.waitTimeout) || duration(self.waitTimeout) > duration('0s')",message="waitTimeout must be positive"
type Rule struct {
	// Hosts are the patterns this rule applies to.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +listType=set
	Hosts []HostPattern `json:"hosts"`
	// MaxConcurrency is the most requests in flight to one host, across every sidecar.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	// +optional
	MaxConcurrency *int32 `json:"maxConcurrency,omitempty"`
	// MinDelay is the least time between two request starts to one host, across every sidecar.
	// +optional
	MinDelay *Duration `json:"minDelay,omitempty"`
	// MaxCrawlDelay caps the robots.txt Crawl-delay that is honoured.
	// +optional
	MaxCrawlDelay *Duration `json:"maxCrawlDelay,omitempty"`
	// Robots says whether robots.txt is enforced.
	// +kubebuilder:validation:Enum=enforce;ignore
	// +optional
	Robots *string `json:"robots,omitempty"`
	// WaitTimeout is the longest a request waits for its turn before it is answered 429.
	// +optional
	WaitTimeout *Duration `json:"waitTimeout,omitempty"`
	// TLS says whether HTTPS is intercepted (each request throttled) or tunnelled blind (one turn
	// per connection).
	// +kubebuilder:validation:Enum=intercept;tunnel
	// +optional
	TLS *string `json:"tls,omitempty"`
	// GroupBy says what shares this rule's maxConcurrency and minDelay: each host on its own (host,
	// the default), every host of one registrable domain by the Public Suffix List (domain), or every
	// host dialled at one address, IPv6 by /64 (ip). robots.txt and its Crawl-delay stay per host.
	// +kubebuilder:validation:Enum=host;domain;ip
	// +optional
	GroupBy *string `json:"groupBy,omitempty"`
}

// CrawlPolicySpec is the desired politeness for some hosts.
type CrawlPolicySpec struct {
	// Rules, each for some host patterns. Between rules (of all CrawlPolicies) the most specific
	// pattern wins; between equally specific ones, the stricter value of each field.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=256
	// +listType=atomic
	Rules []Rule `json:"rules"`
}

// CrawlPolicyStatus is what the controller made of the policy.
type CrawlPolicyStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready is True when the policy is part of the document delivered to sidecars.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Conflicts names the host patterns that other CrawlPolicies also set, with different values:
	// the stricter value of each field applies.
	// +optional
	Conflicts []string `json:"conflicts,omitempty"`
	// Namespaces is how many namespaces with injected pods received the compiled policy.
	// +optional
	Namespaces int32 `json:"namespaces"`
}

// CrawlPolicy sets per-host politeness for every crawler in the cluster: a host's capacity is
// shared by all of them, so the policy is cluster-scoped.
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=cpol,categories=crawlpolite
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Namespaces",type=integer,JSONPath=`.status.namespaces`
// +kubebuilder:printcolumn:name="Conflicts",type=string,JSONPath=`.status.conflicts`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type CrawlPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   CrawlPolicySpec   `json:"spec"`
	Status CrawlPolicyStatus `json:"status,omitempty"`
}

// CrawlPolicyList is a list of CrawlPolicy.
// +kubebuilder:object:root=true
type CrawlPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []CrawlPolicy `json:"items"`
}
