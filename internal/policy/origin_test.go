package policy

import "testing"

// TestOrigin: one identity per request, whichever way the host was written: the key, the robots.txt
// URL and the port dialled all derive from it.
func TestOrigin(t *testing.T) {
	for _, tc := range []struct {
		name, scheme, authority string
		key, url                string
		port                    int
	}{
		{"http default port", "http", "Example.COM:80", "example.com", "http://example.com", 80},
		{"https default port", "https", "example.com:443", "example.com", "https://example.com", 443},
		{"http on 443 keeps it", "http", "example.com:443", "example.com:443", "http://example.com:443", 443},
		{"other port", "https", "example.com:08443", "example.com:8443", "https://example.com:8443", 8443},
		{"IDNA and trailing dot", "https", "Bücher.example.", "xn--bcher-kva.example", "https://xn--bcher-kva.example", 443},
		{"IPv6", "http", "[2001:DB8::1]:8080", "[2001:db8::1]:8080", "http://[2001:db8::1]:8080", 8080},
		{"IPv4-mapped IPv6", "https", "[::ffff:192.0.2.1]", "192.0.2.1", "https://192.0.2.1", 443},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := ParseOrigin(tc.scheme, tc.authority)
			if err != nil {
				t.Fatal(err)
			}
			if o.Key() != tc.key || o.URL() != tc.url || o.PortNumber() != tc.port {
				t.Errorf("key %q, URL %q, port %d; want %q, %q, %d", o.Key(), o.URL(), o.PortNumber(), tc.key, tc.url, tc.port)
			}
			// A key read back (State, the debug endpoints) is the same host, but for the one a scheme
			// has on the other's default port: ParseKey has no scheme, so ":443" and ":80" are the bare
			// host (as State has always read them).
			if o.Port == "443" || o.Port == "80" {
				return
			}
			back, err := ParseKey(o.Key())
			if err != nil || back.Key() != o.Key() {
				t.Errorf("ParseKey(%q) = %q, %v", o.Key(), back.Key(), err)
			}
		})
	}
	for _, a := range []string{"example.com:80", "example.com:443", "example.com"} {
		if o, err := ParseKey(a); err != nil || o.Key() != "example.com" {
			t.Errorf("ParseKey(%q) = %q, %v; want the bare host", a, o.Key(), err)
		}
	}
	if _, err := ParseOrigin("https", "[fe80::1%eth0]:443"); err == nil {
		t.Error("an IPv6 zone was accepted")
	}
}
