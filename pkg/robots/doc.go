// Package robots implements robots.txt as RFC 9309 defines it: parsing that never rejects a file for
// a stray line, product-token user-agent matching (case-insensitive; groups naming the same token
// merged; else the `*` groups), longest match wins with allow winning ties, `*` and `$` wildcards,
// percent-encoding normalisation (RFC 9309 section 2.2.2), and /robots.txt always allowed.
// Crawl-delay and Request-rate, which RFC 9309 leaves out, are read per group as exact decimals.
//
// Every robots.txt comes from a site that may be hostile, so every cost has a bound:
//   - Parse reads at most MaxSize bytes into a compact form (one arena string of normalised
//     patterns, 12-byte rule records; MaxRules, MaxAgents); Rules.Size is the heap it holds, and
//     the merged group For builds per agent is memoised for at most 8 agents and counted too.
//   - Group.Check finds plain rules through a hash index and matches wildcard rules within
//     MaxMatchWork steps; a lookup the budget cannot decide returns a Verdict with Exhausted set,
//     which callers refuse ("too complex"), the same in every process.
//   - Fetcher reads at most MaxHeaderBytes of head and MaxSize of body, follows at most 5
//     redirects, and takes a turn from Gate (the host's semaphore) for every request and hop.
//   - Cache bounds its bytes (CacheOptions.MaxBytes, counted as real heap), its fetches in flight
//     (MaxFetches), and recovers a panic in its detached lookup (ErrInternal, OnPanic).
//   - The shared form in Redis is the rules in normal form (a fixed point of normalisation),
//     deflated, read back whole: every pod decides every path as the pod that fetched the file.
//     Reading it is bounded (4 MiB read, 4 MiB inflated); what it says is trusted, as Redis is.
//
// Why not a library: github.com/temoto/robotstxt deviates from RFC 9309 (prefix user-agent matching,
// order-based ties, whole-file rejection, allow-all after 5xx in v1.1.2), and
// github.com/jimsmart/grobotstxt, a port of Google's matcher, is not served by the Go module proxy
// this project builds from. The conformance cases of google/robotstxt-spec-test decide (testdata/).
//
// The package knows nothing of Redis locks or Kubernetes.
package robots
