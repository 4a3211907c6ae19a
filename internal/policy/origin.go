package policy

import (
	"strconv"
)

// Origin is the host a request goes to, normalized once: the scheme, the host (see Normalize) and
// the port ("" for the scheme's default). Everything keyed by host derives from it, so that the
// policy lookup (Policy.For(o.Host, o.Port)), the semaphore key (Key), robots.txt (URL) and the port
// a group by IP resolves for (PortNumber) always agree.
type Origin struct {
	Scheme string // "http" or "https"
	Host   string // lower case, ASCII, IPv6 bracketed
	Port   string // "" for the scheme's default port
}

// ParseOrigin normalizes the authority of a URL with scheme ("Example.COM:443" for "https").
func ParseOrigin(scheme, authority string) (Origin, error) {
	host, port, err := Normalize(authority, scheme)
	if err != nil {
		return Origin{}, err
	}
	return Origin{Scheme: scheme, Host: host, Port: port}, nil
}

// ParseKey reads an authority without a scheme, as keys are written and the sidecar's debug
// endpoints are asked ("example.com", "example.com:80", "example.com:8443"): like an https
// authority, except that ":80" is the bare host too, as both default ports name it in a key.
func ParseKey(authority string) (Origin, error) {
	o, err := ParseOrigin("https", authority)
	if err == nil && o.Port == "80" {
		o.Port = ""
	}
	return o, err
}

// Key is the origin's semaphore key (when its rule does not group it): its authority, the host or
// host:port.
func (o Origin) Key() string { return Key(o.Host, o.Port) }

// URL is the origin's base URL, scheme://authority (no path): where its robots.txt is.
func (o Origin) URL() string { return o.Scheme + "://" + o.Key() }

// PortNumber is the port a request to o is dialled to: Port, else the scheme's default.
func (o Origin) PortNumber() int {
	if n, err := strconv.Atoi(o.Port); err == nil {
		return n
	}
	if o.Scheme == "http" {
		return 80
	}
	return 443
}
