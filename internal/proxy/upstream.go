package proxy

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"time"
)

// Upstream is the way to origins: a dialer that checks every address with the guard, which the
// proxy's h1 dials through, and a pooled http.Transport over the same dialer for the robots.txt
// fetcher (Client), so robots.txt fetches obey the same destination rules.
type Upstream struct {
	guard     *Guard
	dialer    *net.Dialer
	transport *http.Transport
}

// NewUpstream returns the upstream for opts' timeouts, dialling only what guard allows.
func NewUpstream(opts Options, guard *Guard) *Upstream {
	opts = opts.withDefaults()
	d := guard.Dialer(net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second, Resolver: opts.Resolver})
	return &Upstream{guard: guard, dialer: d, transport: &http.Transport{
		Proxy: nil, // never chain to the pod's own HTTP(S)_PROXY: that is us
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, pinned(ctx, addr))
		},
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           1024,
		MaxIdleConnsPerHost:    64,
		IdleConnTimeout:        opts.IdleTimeout,
		TLSHandshakeTimeout:    opts.TLSHandshakeTimeout,
		ResponseHeaderTimeout:  opts.ResponseHeaderTimeout,
		MaxResponseHeaderBytes: int64(opts.MaxResponseHeaderBytes),
		ExpectContinueTimeout:  time.Second,
		DisableCompression:     true, // a proxy passes Content-Encoding through untouched
		TLSClientConfig:        upstreamTLS.Clone(),
	}}
}

// ResolverAt returns a resolver that asks the DNS server at addr (host:port) over UDP and TCP, for
// Options.Resolver (the sidecar's --resolver). What it answers is still checked by the guard when
// dialled: DNS answers are hostile.
func ResolverAt(addr string) *net.Resolver {
	var d net.Dialer
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}}
}

// upstreamTLS is how every connection to an origin does TLS: certificates verified against the
// system roots.
var upstreamTLS = &tls.Config{MinVersion: tls.VersionTLS12}

// Client is an http.Client over the upstream transport.
func (u *Upstream) Client() *http.Client { return &http.Client{Transport: u.transport} }

func (u *Upstream) dial(ctx context.Context, addr string) (net.Conn, error) {
	return u.dialer.DialContext(ctx, "tcp", pinned(ctx, addr))
}
