// Package proxy owns the forward-proxy mechanics of the sidecar: absolute-URI HTTP requests and
// CONNECT (intercepted with a per-pod CA so each request inside is handled on its own, or tunnelled
// blind), sending each request over a pooled HTTP/1.1 connection readied before its turn's start and
// streaming the response on the handler's goroutine (httputil.ReverseProxy for upgrades and
// Expect: 100-continue), the answers the proxy makes itself with an RFC 9209
// Proxy-Status, and a drain that also waits for hijacked connections. The CA keeps its key in memory
// only, writes its certificate and a trust bundle for the app containers, and mints leaf certificates
// per host. The destination guard checks, at dial time, that the address actually connected to is not
// in a private, loopback, link-local (cloud metadata) or otherwise non-public range unless allowed. Crawlers follow
// untrusted links; checking the resolved address when dialling, not the name before, defeats DNS
// rebinding.
//
// It does not know Redis, robots.txt or the semaphore: politeness reaches it through an interface
// that internal/throttle implements.
package proxy
