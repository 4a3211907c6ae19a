// Package proxy owns the forward-proxy mechanics of the sidecar. So far it holds the destination
// guard: the check, at dial time, that the address actually connected to is not in a private,
// loopback, link-local (cloud metadata) or otherwise non-public range unless allowed. Crawlers follow
// untrusted links; checking the resolved address when dialling, not the name before, defeats DNS
// rebinding.
//
// It does not know Redis, robots.txt or the semaphore: politeness reaches it through an interface
// that internal/throttle implements.
package proxy
