package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
)

// ErrForbiddenDestination is returned by a guarded dial to an address the guard refuses.
var ErrForbiddenDestination = errors.New("proxy: destination not allowed")

// blocked are the ranges a crawler must not reach unless allowed: not globally routable (RFC 6890
// special-purpose registries), plus cloud metadata addresses.
var blocked = mustPrefixes(
	"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
	"192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
	"203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32",
	"::/128", "::1/128", "64:ff9b:1::/48", "100::/64", "2001:db8::/32", "fc00::/7", "fe80::/10", "ff00::/8",
	"fd00:ec2::254/128", // AWS IMDS over IPv6 (inside fc00::/7, named for clarity)
)

// Guard decides which destination addresses may be dialled.
type Guard struct {
	allow []netip.Prefix
}

// NewGuard returns a guard that refuses non-public addresses except those in allow
// (the sidecar's --allow-cidr, comma-separated CIDRs or single addresses).
func NewGuard(allow string) (*Guard, error) {
	g := &Guard{}
	for _, s := range strings.Split(allow, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("proxy: allow-cidr %q: %w", s, err)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		g.allow = append(g.allow, p.Masked())
	}
	return g, nil
}

// Allowed reports whether a may be dialled. IPv4-mapped IPv6 addresses are judged as IPv4.
func (g *Guard) Allowed(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range g.allow {
		if p.Contains(a) {
			return true
		}
	}
	for _, p := range blocked {
		if p.Contains(a) {
			return false
		}
	}
	return a.IsValid()
}

// Control is a net.Dialer.Control function: it runs after name resolution, on the address about to
// be connected, so a name that resolves differently between check and use cannot slip through.
func (g *Guard) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrForbiddenDestination, address)
	}
	if !g.Allowed(ap.Addr()) {
		return fmt.Errorf("%w: %s", ErrForbiddenDestination, ap.Addr())
	}
	return nil
}

// Dialer returns a dialer whose every connection passes the guard.
func (g *Guard) Dialer(base net.Dialer) *net.Dialer {
	base.Control = g.Control
	return &base
}

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}
