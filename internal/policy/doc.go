// Package policy owns the politeness policy document: the YAML the sidecar reads with --policy-file
// and the controller compiles from its defaults (the webhook's flags, set by the Helm chart) and the
// CrawlPolicy objects. It parses and validates the document (errors name the line), normalizes
// hosts into one identity per request (Origin: the policy lookup, the semaphore key, the robots.txt
// URL and the port dialled all derive from it), matches host patterns and computes a host's
// effective limits (HostPolicy). It knows nothing of Redis, HTTP proxying or Kubernetes.
//
// Matching: a pattern names a host ("example.com"), its subdomains ("*.example.org", not the apex),
// and optionally one port ("example.com:8443"). The most specific matching rule wins: an exact host
// over a wildcard, a longer wildcard over a shorter one, a pattern with a port over one without.
// Between equally specific rules, each field takes the stricter value (lower concurrency, longer
// delays, robots enforced, shorter wait, tls intercept, the broader groupBy).
//
// Groups: groupBy (host, domain, ip) says what one budget covers; GroupKey names the semaphore key
// of each (the host key itself for host, "domain:" plus the registrable domain from the Public
// Suffix List, "ip:" plus the dialled address or its IPv6 /64).
package policy
