// Package throttle owns per-request politeness in the sidecar: normalize the host once
// (policy.Origin), look up its limits in the policy, check robots.txt, take a turn from the
// semaphore, sleep until its start once the proxy has the origin connection ready (Turn.Wait), and
// give it back when the proxy is done; upstream 429 and 503 push the host's next start back for
// every pod. It implements proxy.Politeness and knows nothing of how requests are proxied; the
// refusals it answers with are built by internal/proxy (BadHost, RobotsDenied, WaitTimeout,
// BackendDown, Internal), which owns every RFC 9209 error type the sidecar sends.
//
// Groups (a rule's groupBy): the turn is taken on the group's key (policy.GroupKey: the host, its
// registrable domain, or the address it is dialled to, which a group by IP resolves once through the
// proxy's Upstream.Resolve and pins the dial to, see proxy.DialPin), while robots.txt, its
// Crawl-delay and the 429/503 backoff stay the host's: the request's own delay applies to the
// group's gate, and a grouped host's backoff is waited out before it queues on its group.
//
// When Redis is unreachable it refuses with 503 and Retry-After (fail closed: un-coordinated pods would
// together exceed every limit), or, when configured to degrade, takes turns from an in-process
// semaphore so each pod alone stays within the limits until Redis returns.
package throttle
