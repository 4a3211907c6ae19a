// Package proxy owns the forward-proxy mechanics of the sidecar: absolute-URI HTTP requests and
// CONNECT (intercepted with a per-pod CA so each request inside is handled on its own, or tunnelled
// blind), sending every request (upgrades and Expect: 100-continue included) over a pooled HTTP/1.1
// connection readied before its turn's start and streaming the response on the handler's goroutine,
// with one set of header, 1xx and trailer rules (h1.go, headers.go), the answers the proxy makes
// itself with an RFC 9209 Proxy-Status, and a drain that also waits for hijacked connections. The CA keeps its key in memory
// only, writes its certificate and a trust bundle for the app containers, and mints leaf certificates
// per host. The destination guard checks, at dial time, that the address actually connected to is not
// in a private, loopback, link-local (cloud metadata) or otherwise non-public range unless allowed. Crawlers follow
// untrusted links; checking the resolved address when dialling, not the name before, defeats DNS
// rebinding.
//
// Origins are hostile (design.md, threat model), so what they send is bounded and checked: a
// response head takes at most Options.MaxResponseHeaderBytes, at most five 1xx precede the final
// response, status codes outside 100-999 and unsolicited 101s fail the request (head.go); an idle
// connection is reused only when the origin has sent nothing since and not closed it
// (idlecheck.go), and the pool is bounded; NAT64, 6to4 and the other IPv6 forms of IPv4 are judged
// by the IPv4 address or refused, and the sidecar's own ports are refused on every local address
// (guard.go); an intercepted tunnel serves only its CONNECT host, by SNI and by Host; every handler
// recovers panics into a 502, one log line and crawlpolite_panics_total (recover.go). Logs name
// hosts and paths, never queries.
//
// It does not know Redis, robots.txt or the semaphore: politeness reaches it through an interface
// that internal/throttle implements.
package proxy
