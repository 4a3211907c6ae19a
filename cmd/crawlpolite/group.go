package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/crawlpolite/crawlpolite/internal/policy"
)

// groupKey is the semaphore key a sidecar takes a request's turn on, as internal/throttle's group
// decides it (unexported there, so mirrored here on the same exported piece, policy.GroupKey): the
// host's own key, its registrable domain's, or for groupBy ip the address the request would be
// dialled to. That address is resolved as a sidecar without a proxy resolves it
// (throttle.systemResolve): the first answer of the system's resolver, or of the DNS server at
// dnsServer (the sidecar's --resolver) when set. The sidecar's proxy also skips answers its
// destination guard refuses; the CLI links no proxy code, so a name whose first answer is a
// refused address may be grouped by the sidecar under its next one.
func groupKey(ctx context.Context, g policy.Group, host, port, dnsServer string) (string, error) {
	switch g {
	case policy.GroupHost:
		return policy.Key(host, port), nil
	case policy.GroupDomain:
		return policy.GroupKey(g, host, port, netip.Addr{}), nil
	}
	a, err := resolveFirst(ctx, host, dnsServer)
	if err != nil {
		return "", err
	}
	return policy.GroupKey(g, host, port, a), nil
}

// resolveFirst is host's first address: the host itself when it is an IP literal.
func resolveFirst(ctx context.Context, host, dnsServer string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return a, nil
	}
	r := net.DefaultResolver
	if dnsServer != "" {
		var d net.Dialer
		r = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, dnsServer)
		}}
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.Addr{}, err
	}
	if len(addrs) == 0 {
		return netip.Addr{}, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
	}
	return addrs[0].Unmap(), nil
}

// groupReason says which budget the request takes its turn from, and why.
func groupReason(in explainInput) reason {
	l, src := in.pol.HostPolicy, in.pol.Source["groupBy"]
	r := reason{Kind: "group", Effect: "none"}
	switch {
	case in.groupErr != nil:
		r.Effect = "refuses"
		r.Detail = fmt.Sprintf("groupBy ip (%s): %s does not resolve to an address to group by (%v): the sidecar answers as to a failed dial",
			src, in.key, in.groupErr)
	case in.group == in.key:
		r.Detail = fmt.Sprintf("groupBy %s (%s): the host's own budget, key %s", l.GroupBy, src, in.group)
	default:
		r.Detail = fmt.Sprintf("groupBy %s (%s): one budget for the group, key %s; the backoff and robots.txt are the host's (%s)",
			l.GroupBy, src, in.group, in.key)
	}
	return r
}
