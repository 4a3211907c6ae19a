// Package robots implements robots.txt as RFC 9309 defines it: parsing that never rejects a file for
// a stray line, product-token user-agent matching (case-insensitive; groups naming the same token
// merged; else the `*` groups), longest match wins with allow winning ties, `*` and `$` wildcards,
// percent-encoding normalisation (RFC 9309 section 2.2.2), and /robots.txt always allowed.
// Crawl-delay and Request-rate, which RFC 9309 leaves out, are read per group.
//
// Why not a library: github.com/temoto/robotstxt deviates from RFC 9309 (prefix user-agent matching,
// order-based ties, whole-file rejection, allow-all after 5xx in v1.1.2), and
// github.com/jimsmart/grobotstxt, a port of Google's matcher, is not served by the Go module proxy
// this project builds from. The conformance cases of google/robotstxt-spec-test decide (testdata/).
//
// The package knows nothing of Redis locks or Kubernetes.
package robots
