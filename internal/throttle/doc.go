// Package throttle owns per-request politeness in the sidecar: normalise the host, look up its limits
// in the policy, check robots.txt, take a turn from the semaphore, sleep until its start once the
// proxy has the origin connection ready (Turn.Wait), and give it back when the proxy is done; upstream 429 and 503 push the host's next start back for every pod.
// It implements proxy.Politeness and knows nothing of how requests are proxied.
//
// When Redis is unreachable it refuses with 503 and Retry-After (fail closed: un-coordinated pods would
// together exceed every limit), or, when configured to degrade, takes turns from an in-process
// semaphore so each pod alone stays within the limits until Redis returns.
package throttle
