package policy

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/net/idna"
)

// Normalize splits an authority ("Example.COM:443", "[::1]:8080", "bücher.example") into a normalised
// host and port: lower case, internationalised names in their ASCII (punycode) form, IPv6 literals
// bracketed, and the scheme's default port dropped (80 for http, 443 for https) so that
// "example.com" and "example.com:443" are one host.
func Normalize(authority, scheme string) (host, port string, err error) {
	host, port = authority, ""
	if h, p, e := net.SplitHostPort(authority); e == nil {
		host, port = h, p
		if n, e := strconv.Atoi(p); e != nil || n < 1 || n > 65535 {
			return "", "", fmt.Errorf("policy: port %q out of range", p)
		}
	}
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	host, err = normalizeHost(host)
	return host, port, err
}

// Key is the semaphore key of a normalised host and port: the host, or host:port.
func Key(host, port string) string {
	if port == "" {
		return host
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
}

var profile = idna.New(idna.MapForLookup(), idna.Transitional(false), idna.StrictDomainName(false))

func normalizeHost(h string) (string, error) {
	h = strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), ".")
	if a, err := netip.ParseAddr(h); err == nil {
		if a.Is6() && !a.Is4In6() {
			return "[" + a.String() + "]", nil
		}
		return a.String(), nil
	}
	ascii, err := profile.ToASCII(h)
	if err != nil {
		return "", fmt.Errorf("policy: host %q is not a valid name: %w", h, err)
	}
	if ascii == "" {
		return "", fmt.Errorf("policy: empty host")
	}
	ascii = strings.ToLower(ascii)
	// The profile is lenient so that real-world names with '_' pass; anything else outside
	// letters, digits, '-', '_' and '.' is not a host name.
	for i := 0; i < len(ascii); i++ {
		if c := ascii[i]; !hostChar(c) {
			return "", fmt.Errorf("policy: host %q contains %q", h, c)
		}
	}
	return ascii, nil
}

func hostChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}
