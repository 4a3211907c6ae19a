package robots

import (
	"math/big"
	"strings"
	"time"
)

// maxDelay bounds Crawl-delay and Request-rate: a larger value is ignored as nonsense, and the
// arithmetic below never overflows.
const maxDelay = 1e6 * time.Second

// parseDelay reads Crawl-delay: seconds as a decimal ("2", "0.5", "1.25", ".5"), read exactly to
// the nanosecond (digits beyond are dropped). Anything else, an empty value included, is ignored.
func parseDelay(v string) (time.Duration, bool) {
	n, scale, ok := parseDecimal(firstField(v))
	if !ok {
		return 0, false
	}
	d, ok := scaled(n, 9-scale) // n * 10^-scale seconds, in nanoseconds
	return time.Duration(d), ok
}

// parseRate reads Request-rate "n/m" (n requests per m seconds; m may carry an s, m or h unit) as
// a delay of m/n, truncated to the nanosecond.
func parseRate(v string) (time.Duration, bool) {
	ns, ms, ok := strings.Cut(firstField(v), "/")
	if !ok {
		return 0, false
	}
	unit := uint64(1)
	switch {
	case strings.HasSuffix(ms, "s"):
		ms = ms[:len(ms)-1]
	case strings.HasSuffix(ms, "m"):
		ms, unit = ms[:len(ms)-1], 60
	case strings.HasSuffix(ms, "h"):
		ms, unit = ms[:len(ms)-1], 3600
	}
	n, nScale, ok1 := parseDecimal(ns)
	m, mScale, ok2 := parseDecimal(ms)
	if !ok1 || !ok2 || n == 0 || m == 0 {
		return 0, false
	}
	// delay = (m * 10^-mScale * unit) / (n * 10^-nScale) seconds, in nanoseconds:
	// m * unit * 10^(9+nScale) / (n * 10^mScale). Each mantissa has at most 16 digits.
	num := new(big.Int).Mul(new(big.Int).SetUint64(m), big.NewInt(int64(unit)))
	num.Mul(num, pow10(9+nScale))
	den := new(big.Int).Mul(new(big.Int).SetUint64(n), pow10(mScale))
	d := num.Quo(num, den)
	if d.Sign() <= 0 || d.Cmp(big.NewInt(int64(maxDelay))) > 0 {
		return 0, false
	}
	return time.Duration(d.Int64()), true
}

func pow10(e int) *big.Int { return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(e)), nil) }

// firstField returns v up to its first space or tab; v is already trimmed.
func firstField(v string) string {
	if i := strings.IndexAny(v, " \t"); i >= 0 {
		return v[:i]
	}
	return v
}

// parseDecimal reads digits with an optional fraction ("12", "0.5", ".25", "3.") as n * 10^-scale.
// It accepts no sign, exponent, NaN or infinity; at most 9 fraction digits count, and an integer
// part of more than 7 significant digits (beyond any delay we accept) is refused.
func parseDecimal(s string) (n uint64, scale int, ok bool) {
	intPart, frac, _ := strings.Cut(s, ".")
	if intPart == "" && frac == "" {
		return 0, 0, false
	}
	intPart = strings.TrimLeft(intPart, "0")
	if len(intPart) > 7 {
		return 0, 0, false
	}
	for _, part := range []string{intPart, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return 0, 0, false
			}
		}
	}
	frac = frac[:min(len(frac), 9)]
	for _, c := range intPart + frac {
		n = n*10 + uint64(c-'0')
	}
	return n, len(frac), true
}

// scaled returns n * 10^exp (exp in [0, 9]), false beyond maxDelay. n has at most 7+9-exp digits,
// so the product stays below 10^16.
func scaled(n uint64, exp int) (uint64, bool) {
	for ; exp > 0; exp-- {
		n *= 10
	}
	return n, n <= uint64(maxDelay)
}
