package robots

// normalise brings a path or rule to one form (RFC 9309 2.2.2): octets outside printable US-ASCII
// are percent-encoded, percent-encodings use upper-case hex, and encoded unreserved characters
// (letters, digits, '-', '.', '_', '~') are decoded. Reserved characters stay as written, so an
// encoded '*' or '$' is never a wildcard. A '%' that starts no encoding becomes "%25": the form is
// then a fixed point (normalising it again changes nothing, so "%4%41" cannot turn into "J" on a
// second pass), which is what lets the shared cache store normalised patterns.
func normalise(s string) string {
	if !needsNormalising(s) {
		return s
	}
	return string(appendNormalised(make([]byte, 0, len(s)+8), s))
}

func appendNormalised(b []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			d := unhex(s[i+1])<<4 | unhex(s[i+2])
			if unreserved(d) {
				b = append(b, d)
			} else {
				b = append(b, '%', hex[d>>4], hex[d&15])
			}
			i += 2
		case c == '%' || c <= ' ' || c >= 0x7f:
			b = append(b, '%', hex[c>>4], hex[c&15])
		default:
			b = append(b, c)
		}
	}
	return b
}

// needsNormalising is false for the common path that is already in normal form.
func needsNormalising(s string) bool {
	for i := 0; i < len(s); i++ {
		if plain[s[i]] {
			continue
		}
		if s[i] != '%' || i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) || s[i+1] >= 'a' || s[i+2] >= 'a' ||
			unreserved(unhex(s[i+1])<<4|unhex(s[i+2])) {
			return true
		}
		i += 2
	}
	return false
}

// plain marks the bytes that stand for themselves in normal form.
var plain = func() (t [256]bool) {
	for c := '!'; c < 0x7f; c++ {
		t[c] = c != '%'
	}
	return t
}()

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

func unreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}
