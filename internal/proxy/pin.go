package proxy

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// DialPin is what a Turn also implements when its request must be dialled to one address: the
// one its politeness was decided by (a group by IP), resolved once before the turn. The proxy then
// dials that address instead of resolving the name again, so the server the request reaches is the
// server whose budget it took; the guard checks the address like any other. A zero address pins
// nothing.
type DialPin interface {
	DialAddr() netip.Addr
}

type pinKey struct{}

// withPin returns ctx carrying turn's pinned address, if it has one.
func withPin(ctx context.Context, turn Turn) context.Context {
	if p, ok := turn.(DialPin); ok {
		if a := p.DialAddr(); a.IsValid() {
			return context.WithValue(ctx, pinKey{}, a)
		}
	}
	return ctx
}

func pinOf(ctx context.Context) (netip.Addr, bool) {
	a, ok := ctx.Value(pinKey{}).(netip.Addr)
	return a, ok
}

// pinned is addr (host:port) with its host replaced by ctx's pinned address, if any.
func pinned(ctx context.Context, addr string) string {
	a, ok := pinOf(ctx)
	if !ok {
		return addr
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return net.JoinHostPort(a.String(), port)
}

// Resolve is the address a request to host (a normalized host, IPv6 bracketed) and port will be
// dialled to when pinned (see DialPin): the first address the resolver answers that the guard
// allows for port, resolved through the same resolver the dialer uses. It fails like a dial would
// when no address is allowed (ErrForbiddenDestination) or the name does not resolve.
func (u *Upstream) Resolve(ctx context.Context, host string, port int) (netip.Addr, error) {
	if a, err := netip.ParseAddr(trimBrackets(host)); err == nil {
		return u.allowed(port, []netip.Addr{a})
	}
	r := u.dialer.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.Addr{}, err
	}
	return u.allowed(port, addrs)
}

func (u *Upstream) allowed(port int, addrs []netip.Addr) (netip.Addr, error) {
	for _, a := range addrs {
		if u.guard.AllowedAddrPort(netip.AddrPortFrom(a.Unmap(), uint16(port))) {
			return a.Unmap(), nil
		}
	}
	if len(addrs) == 0 {
		return netip.Addr{}, &net.DNSError{Err: "no addresses", IsNotFound: true}
	}
	return netip.Addr{}, fmt.Errorf("%w: %s", ErrForbiddenDestination, net.JoinHostPort(addrs[0].String(), strconv.Itoa(port)))
}

func trimBrackets(h string) string {
	if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
		return h[1 : len(h)-1]
	}
	return h
}
