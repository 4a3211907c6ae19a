package policy

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Normalize splits an authority ("Example.COM:443", "[::1]:8080", "bücher.example") into a normalized
// host and port: lower case, internationalised names in their ASCII (punycode) form, IPv6 literals
// bracketed, IPv4-mapped IPv6 literals written as the IPv4 address they are ("[::ffff:1.2.3.4]" is
// "1.2.3.4": one host, one semaphore key), the port without leading zeros and the scheme's default
// port dropped (80 for http, 443 for https) so that "example.com" and "example.com:443" are one host.
// Refused: IPv6 zones (a zone names an interface of this machine, never a site), invalid UTF-8,
// empty labels, labels over 63 bytes and names over 253, brackets around anything but IPv6.
// Normalize is idempotent: Normalize(Key(host, port)) gives host and port back.
func Normalize(authority, scheme string) (host, port string, err error) {
	host, port = authority, ""
	if h, p, e := net.SplitHostPort(authority); e == nil {
		host, port = h, p
		if strings.HasPrefix(authority, "[") {
			host = "[" + h + "]" // keep the brackets: they say it is IPv6
		}
		if port != "" {
			n, e := strconv.Atoi(p)
			if e != nil || n < 1 || n > 65535 || strings.TrimLeft(p, "0123456789") != "" {
				return "", "", fmt.Errorf("policy: port %q out of range", p)
			}
			port = strconv.Itoa(n)
		}
	}
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	host, err = normalizeHost(host)
	return host, port, err
}

// Key is the semaphore key of a normalized host and port: the host, or host:port. It is also the
// authority of the host's URLs (IPv6 bracketed).
func Key(host, port string) string {
	if port == "" {
		return host
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
}

var profile = idna.New(idna.MapForLookup(), idna.Transitional(false), idna.StrictDomainName(false))

func normalizeHost(h string) (string, error) {
	if !utf8.ValidString(h) {
		return "", fmt.Errorf("policy: host %q is not valid UTF-8", h)
	}
	inner, bracketed := strings.CutPrefix(h, "[")
	if bracketed {
		var ok bool
		if inner, ok = strings.CutSuffix(inner, "]"); !ok {
			return "", fmt.Errorf("policy: host %q: unbalanced brackets", h)
		}
	}
	if a, err := netip.ParseAddr(inner); err == nil {
		switch {
		case a.Zone() != "":
			return "", fmt.Errorf("policy: host %q: IPv6 zones are not destinations", h)
		case a.Is4() && bracketed:
			return "", fmt.Errorf("policy: host %q: brackets are for IPv6 literals", h)
		case a.Is4() || a.Is4In6():
			return a.Unmap().String(), nil
		}
		return "[" + a.String() + "]", nil
	}
	if bracketed || strings.ContainsAny(inner, "[]%") {
		return "", fmt.Errorf("policy: host %q is neither a name nor an IP literal", h)
	}
	ascii, err := toASCII(strings.TrimSuffix(inner, "."))
	if err != nil {
		return "", fmt.Errorf("policy: host %q: %w", h, err)
	}
	// A name whose normal form normalizes to something else would get two keys: refused.
	if again, err := toASCII(ascii); err != nil || again != ascii {
		return "", fmt.Errorf("policy: host %q has no stable normal form", h)
	}
	return ascii, nil
}

// toASCII is a name's lower-case ASCII form, checked: letters, digits, '-', '_' and '.' only
// (the profile is lenient so that real-world names with '_' pass), no empty label, DNS lengths.
func toASCII(name string) (string, error) {
	ascii, err := profile.ToASCII(name)
	if err != nil {
		return "", fmt.Errorf("not a valid name: %w", err)
	}
	if ascii == "" {
		return "", fmt.Errorf("empty host")
	}
	ascii = strings.ToLower(ascii)
	if len(ascii) > 253 {
		return "", fmt.Errorf("name longer than 253 bytes")
	}
	for i := 0; i < len(ascii); i++ {
		if c := ascii[i]; !hostChar(c) {
			return "", fmt.Errorf("contains %q", c)
		}
	}
	for _, label := range strings.Split(ascii, ".") {
		switch {
		case label == "":
			return "", fmt.Errorf("empty label")
		case len(label) > 63:
			return "", fmt.Errorf("label longer than 63 bytes")
		}
	}
	return ascii, nil
}

func hostChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}
