// Package robots implements robots.txt as RFC 9309 defines it, for crawlers that fetch from sites
// they do not trust: parsing, matching, fetching with the RFC's status-code semantics, and a cache
// that a fleet of processes can share.
//
// # Matching
//
// Parse never rejects a file: a line it cannot read is skipped. Rules.For picks the group of a
// crawler's product token (case-insensitive; groups naming the same token merged; else the `*`
// groups), and Group.Check decides a path: the longest matching rule wins, allow wins a tie, `*`
// and `$` are wildcards, paths and patterns are compared after percent-encoding normalisation (RFC
// 9309 section 2.2.2), and /robots.txt is always allowed. Crawl-delay and Request-rate, which RFC
// 9309 leaves out, are read per group as exact decimals (Group.CrawlDelay). Of the cases of
// google/robotstxt-spec-test that test RFC 9309, all pass but three where Google's byte matcher
// departs from the RFC's percent-encoding rules, which this package follows.
//
// # Fetching
//
// Fetcher.Fetch never fails: its Result says what the RFC makes of the response. A 2xx body's
// rules apply (Fetched); a 4xx other than 429, or more than five redirects, allows everything
// (Unavailable); a 5xx, a 429, a timeout or a network error disallows everything (Unreachable), and
// is cached only briefly. Cache-Control max-age sets the lifetime, at most 24 hours. A Fetcher's
// zero value is usable; Fetcher.Gate lets a politeness semaphore space its requests and redirect
// hops.
//
// # Caching
//
// Cache is an LRU of results in front of an optional Store shared with other processes
// (RedisStore on Redis): one lookup per host per process at a time, one fetch per host per TTL for
// every process sharing the store (the one that takes the store's claim fetches, the others wait for
// its result), failures cached with a doubling lifetime up to an hour. What the store holds is the
// rules in normal form, read back whole, so every process decides every path as the one that
// fetched the file. Results are values: each caller gets its own copy, and parsed Rules are never
// changed.
//
// # Bounds
//
// A site controls its robots.txt, so every cost has a bound:
//   - Parse reads at most MaxSize bytes, at most MaxRules rules and MaxAgents agents, into a compact
//     form (one string of patterns and 12-byte rule records); Rules.Size is the heap it holds, the
//     merged groups For memoises (at most 8 agents) included.
//   - Group.Check finds plain rules through a hash index and matches wildcard rules within
//     MaxMatchWork steps; a lookup the budget cannot decide returns a Verdict with Exhausted set, the
//     same in every process.
//   - Fetcher reads at most MaxHeaderBytes of response head and MaxSize of body.
//   - Cache bounds its heap (CacheOptions.MaxBytes), its fetches in flight (MaxFetches), and recovers
//     a panic in a lookup (ErrInternal, CacheOptions.OnPanic).
//   - A value read from a Store is at most MaxStoredSize bytes and inflates to at most 4 MiB; what
//     it says is trusted, as the store is.
//
// The package knows nothing of locks or Kubernetes.
package robots
