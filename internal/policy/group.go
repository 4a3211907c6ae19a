package policy

import (
	"net/netip"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// Group is what one politeness budget (one semaphore key) covers: a host, every host of one
// registrable domain (a site), or every host dialled at one address (a server).
type Group uint8

// The groups, ordered from the narrowest: between equally specific rules the broader one wins, as
// it lets fewer requests at once reach the server.
const (
	GroupHost   Group = iota // the host and port: the key is Key(host, port), as without groups
	GroupDomain              // the registrable domain (Public Suffix List), any port
	GroupIP                  // the dialled address (IPv4 by address, IPv6 by /64), any port
)

var groupNames = map[string]Group{"host": GroupHost, "domain": GroupDomain, "ip": GroupIP}

// String is the group's name in the document.
func (g Group) String() string {
	switch g {
	case GroupDomain:
		return "domain"
	case GroupIP:
		return "ip"
	}
	return "host"
}

// Key prefixes of grouped keys. A host key never contains "domain:" or "ip:" followed by what
// follows here (a port is digits), so no group shares a key, and so a slot, with a host.
const (
	domainPrefix = "domain:"
	ipPrefix     = "ip:"
)

// GroupKey is the semaphore key of a request to the normalized host and port (see Normalize)
// under g. addr is the address the request will be dialled to; only GroupIP reads it, and a host
// that is an IP literal is its own address. Without a valid address GroupIP falls back to the host.
func GroupKey(g Group, host, port string, addr netip.Addr) string {
	switch g {
	case GroupDomain:
		return domainPrefix + RegistrableDomain(host)
	case GroupIP:
		if !addr.IsValid() {
			addr, _ = netip.ParseAddr(strings.Trim(host, "[]"))
		}
		if addr.IsValid() {
			return ipPrefix + AddrGroup(addr)
		}
	}
	return Key(host, port)
}

// AddrGroup is an address's group: an IPv4 address (an IPv4-mapped IPv6 one as the IPv4 address
// it is) by itself, an IPv6 address by its /64, the smallest network a site is commonly given.
func AddrGroup(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// RegistrableDomain is a normalized host's registrable domain, its public suffix plus one label
// (publicsuffix.EffectiveTLDPlusOne): "a.b.example.co.uk" is "example.co.uk". A name under a suffix
// the list does not know ("x.y.test") takes its last two labels ("y.test"), as the list's default
// rule "*" says. A host that has no registrable domain is its own group: an IP literal, a single
// label ("localhost"), a public suffix itself ("co.uk", "github.io"). The list's private section
// counts too, so "alice.github.io" and "bob.github.io" are two sites, as their owners are two.
func RegistrableDomain(host string) string {
	host = strings.TrimSuffix(host, ".")
	if strings.HasPrefix(host, "[") {
		return host
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return host
	}
	d, err := publicsuffix.EffectiveTLDPlusOne(host)
	if err != nil {
		return host
	}
	return d
}
