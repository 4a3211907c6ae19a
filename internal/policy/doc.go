// Package policy owns the politeness policy document: the YAML the sidecar reads with --policy-file
// and the controller will generate from Helm defaults and CrawlPolicy objects. It parses and validates
// the document (errors name the line), normalises hosts, matches host patterns and computes a host's
// effective limits. It knows nothing of Redis, HTTP proxying or Kubernetes.
//
// Matching: a pattern names a host ("example.com"), its subdomains ("*.example.org", not the apex),
// and optionally one port ("example.com:8443"). The most specific matching rule wins: an exact host
// over a wildcard, a longer wildcard over a shorter one, a pattern with a port over one without.
// Between equally specific rules, each field takes the stricter value (lower concurrency, longer
// delays, robots enforced, shorter wait, tls intercept).
package policy
