// Package proxy owns the forward-proxy mechanics of the sidecar. So far it holds the per-pod CA for
// TLS interception (key in memory only; CA certificate and trust bundle written for the app containers;
// leaf certificates minted per host and cached) and the destination guard: the check, at dial time, that the address actually connected to is not in a private,
// loopback, link-local (cloud metadata) or otherwise non-public range unless allowed. Crawlers follow
// untrusted links; checking the resolved address when dialling, not the name before, defeats DNS
// rebinding.
//
// It does not know Redis, robots.txt or the semaphore: politeness reaches it through an interface
// that internal/throttle implements.
package proxy
