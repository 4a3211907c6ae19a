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
// special-purpose registries), plus cloud metadata addresses. IPv6 forms that carry an IPv4 address
// are either judged by that address (see embedded4) or, where it cannot be read reliably or the
// form is obsolete, refused outright:
//   - ::/96 IPv4-compatible (deprecated by RFC 4291; also :: and ::1), ::ffff:0:0:0/96 SIIT
//     IPv4-translated (RFC 6145): refused, no public site needs them;
//   - 64:ff9b:1::/48 local-use NAT64 (RFC 8215): refused, the operator picks the prefix length and
//     so where the IPv4 address sits;
//   - 2001::/32 Teredo: refused, its IPv4 addresses are obfuscated and it tunnels through relays;
//   - fec0::/10 site-local (deprecated by RFC 3879): refused, like fc00::/7.
var blocked = mustPrefixes(
	"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
	"192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
	"203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32",
	"::/96", "::ffff:0:0:0/96", "64:ff9b:1::/48", "100::/64", "2001::/32", "2001:db8::/32",
	"fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
	"fd00:ec2::254/128", // AWS IMDS over IPv6 (inside fc00::/7, named for clarity)
)

// The IPv6 prefixes whose addresses carry an IPv4 address at a fixed place, judged by it.
var (
	nat64  = netip.MustParsePrefix("64:ff9b::/96") // well-known NAT64 (RFC 6052): the last 32 bits
	sixTo4 = netip.MustParsePrefix("2002::/16")    // 6to4 (RFC 3056): bits 16-47
)

// embedded4 returns the IPv4 address a NAT64 or 6to4 address reaches. In a DNS64 cluster an AAAA
// of 64:ff9b::a00:5 is 10.0.0.5 through the NAT64 gateway: it must be judged as 10.0.0.5, and a
// public IPv4 address behind it stays reachable (an IPv6-only cluster reaches the IPv4 web so).
func embedded4(a netip.Addr) (netip.Addr, bool) {
	b := a.As16()
	switch {
	case !a.Is6():
		return netip.Addr{}, false
	case nat64.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixTo4.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

// Guard decides which destination addresses may be dialled. Configure it (NewGuard, DenySelf)
// before use; after that it is read-only and safe for concurrent use.
type Guard struct {
	allow []netip.Prefix
	self  map[uint16]bool     // the sidecar's own listening ports
	local map[netip.Addr]bool // this host's addresses, when self is set
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

// DenySelf refuses dials to ports (the sidecar's own listeners: proxy, admin) on any address of
// this host, whatever --allow-cidr allows: loopback, the unspecified address, and every interface
// address (the pod IP), read now; a pod's addresses do not change. A crawled link to
// http://<pod-ip>:15081/ then never reaches the admin port through the proxy.
func (g *Guard) DenySelf(ports ...int) error {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return fmt.Errorf("proxy: local addresses: %w", err)
	}
	if g.self == nil {
		g.self, g.local = map[uint16]bool{}, map[netip.Addr]bool{}
	}
	for _, p := range ports {
		if p < 1 || p > 65535 {
			return fmt.Errorf("proxy: DenySelf: port %d out of range", p)
		}
		g.self[uint16(p)] = true
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				g.local[ip.Unmap()] = true
			}
		}
	}
	return nil
}

// Allowed reports whether a may be dialled (on a port DenySelf did not name). IPv4-mapped IPv6
// addresses are judged as IPv4, NAT64 and 6to4 addresses by the IPv4 address they carry.
func (g *Guard) Allowed(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	for _, p := range g.allow {
		if p.Contains(a) {
			return true
		}
	}
	if v4, ok := embedded4(a); ok {
		return g.Allowed(v4)
	}
	for _, p := range blocked {
		if p.Contains(a) {
			return false
		}
	}
	return a.IsValid()
}

// AllowedAddrPort reports whether ap may be dialled: Allowed, and not one of the sidecar's own
// listeners (DenySelf), however its address is written.
func (g *Guard) AllowedAddrPort(ap netip.AddrPort) bool {
	return !g.isSelf(ap.Addr(), ap.Port()) && g.Allowed(ap.Addr())
}

func (g *Guard) isSelf(a netip.Addr, port uint16) bool {
	if !g.self[port] {
		return false
	}
	a = a.Unmap().WithZone("")
	if v4, ok := embedded4(a); ok {
		a = v4
	}
	return a.IsLoopback() || a.IsUnspecified() || g.local[a]
}

// Control is a net.Dialer.Control function: it runs after name resolution, on the address about to
// be connected, for every connection attempt (each address of a name, both families of happy
// eyeballs), so neither a name that resolves differently between check and use nor a hostile DNS
// answer among good ones slips through.
func (g *Guard) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrForbiddenDestination, address)
	}
	if !g.AllowedAddrPort(ap) {
		return fmt.Errorf("%w: %s", ErrForbiddenDestination, ap)
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
