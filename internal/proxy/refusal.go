package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// Refusal is an answer the proxy makes itself instead of the origin's. It carries the status, the
// RFC 9209 Proxy-Status error type, and a short reason used as the metrics outcome and log message.
type Refusal struct {
	Status     int           // HTTP status sent to the client
	Type       string        // RFC 9209 error type, e.g. "http_request_denied"
	Reason     string        // bounded token for metrics and logs, e.g. "robots"
	Details    string        // human-readable, sent in the Proxy-Status details parameter
	RetryAfter time.Duration // sent as Retry-After (whole seconds, at least 1) when positive
	Err        error         // the cause, if any
}

func (r *Refusal) Error() string {
	if r.Err != nil {
		return fmt.Sprintf("proxy: %s: %s: %v", r.Reason, r.Details, r.Err)
	}
	return fmt.Sprintf("proxy: %s: %s", r.Reason, r.Details)
}

func (r *Refusal) Unwrap() error { return r.Err }

// ProxyName identifies this proxy in Proxy-Status and Via.
const ProxyName = "crawlpolite"

// write sends the refusal: status, Proxy-Status, Retry-After and a one-line text body.
func (r *Refusal) write(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Proxy-Status", ProxyName+"; error="+r.Type+"; details="+strconv.Quote(sanitize(r.Details)))
	if r.RetryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64(max(time.Second, r.RetryAfter+time.Second-1)/time.Second), 10))
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(r.Status)
	_, _ = fmt.Fprintf(w, "%s: %s\n", ProxyName, r.Details)
}

// sanitize keeps a details string to printable ASCII so it is a valid structured-field string.
func sanitize(s string) string {
	return strings.Map(func(c rune) rune {
		if c < 0x20 || c > 0x7e {
			return '?'
		}
		return c
	}, s)
}

// Classify turns an error of a dial or round trip to the origin into the refusal to send.
func Classify(err error) *Refusal {
	var (
		ref   *Refusal
		dns   *net.DNSError
		uerr  x509.UnknownAuthorityError
		herr  x509.HostnameError
		cerr  x509.CertificateInvalidError
		verr  *tls.CertificateVerificationError
		rerr  tls.RecordHeaderError
		alert tls.AlertError
	)
	switch {
	case errors.As(err, &ref):
		return ref
	case errors.Is(err, ErrForbiddenDestination):
		return &Refusal{Status: http.StatusForbidden, Type: "destination_ip_prohibited", Reason: "destination",
			Details: "destination address is in a range not allowed (--allow-cidr)", Err: err}
	case errors.As(err, &dns):
		if dns.IsTimeout {
			return &Refusal{Status: http.StatusGatewayTimeout, Type: "dns_timeout", Reason: "upstream_timeout",
				Details: "DNS lookup timed out", Err: err}
		}
		return &Refusal{Status: http.StatusBadGateway, Type: "dns_error", Reason: "upstream_error",
			Details: "DNS lookup failed: " + dns.Err, Err: err}
	case errors.As(err, &verr), errors.As(err, &uerr), errors.As(err, &herr), errors.As(err, &cerr):
		return &Refusal{Status: http.StatusBadGateway, Type: "tls_certificate_error", Reason: "upstream_error",
			Details: "origin certificate not trusted", Err: err}
	case errors.As(err, &rerr), errors.As(err, &alert):
		return &Refusal{Status: http.StatusBadGateway, Type: "tls_protocol_error", Reason: "upstream_error",
			Details: "TLS handshake with the origin failed", Err: err}
	case errors.Is(err, syscall.ECONNREFUSED):
		return &Refusal{Status: http.StatusBadGateway, Type: "connection_refused", Reason: "upstream_error",
			Details: "origin refused the connection", Err: err}
	case isTimeout(err):
		return &Refusal{Status: http.StatusGatewayTimeout, Type: "http_response_timeout", Reason: "upstream_timeout",
			Details: "origin did not answer in time", Err: err}
	}
	return &Refusal{Status: http.StatusBadGateway, Type: "destination_unavailable", Reason: "upstream_error",
		Details: "origin unavailable", Err: err}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

func badRequest(details string) *Refusal {
	return &Refusal{Status: http.StatusBadRequest, Type: "http_request_error", Reason: "bad_request", Details: details}
}

// The refusals a Politeness makes (internal/throttle): built here, so that every RFC 9209 error
// type, status and metrics reason the proxy sends is chosen in this package.

// BadHost refuses a request whose host does not normalize (err says why): 400.
func BadHost(err error) *Refusal {
	return &Refusal{Status: http.StatusBadRequest, Type: "http_request_error", Reason: "bad_request",
		Details: "bad host: " + err.Error(), Err: err}
}

// RobotsDenied refuses a request robots.txt disallows, or cannot be evaluated for: 403.
func RobotsDenied(details string, err error) *Refusal {
	return &Refusal{Status: http.StatusForbidden, Type: "http_request_denied", Reason: "robots", Details: details, Err: err}
}

// WaitTimeout refuses a request whose turn would come later than its wait allows: 429, to retry
// after retry.
func WaitTimeout(details string, retry time.Duration) *Refusal {
	return &Refusal{Status: http.StatusTooManyRequests, Type: "http_request_denied", Reason: "wait_timeout",
		Details: details, RetryAfter: retry}
}

// BackendDown refuses a request whose turn cannot be taken because the shared backend is
// unreachable: 503, to retry after 5 s.
func BackendDown(details string, err error) *Refusal {
	return &Refusal{Status: http.StatusServiceUnavailable, Type: "proxy_internal_error", Reason: "backend",
		Details: details, RetryAfter: 5 * time.Second, Err: err}
}

// Internal refuses a request the proxy failed on itself: 500.
func Internal(details string, err error) *Refusal {
	return &Refusal{Status: http.StatusInternalServerError, Type: "proxy_internal_error", Reason: "internal",
		Details: details, Err: err}
}

// cut shortens s to at most n bytes, at a UTF-8 boundary, for logs.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// maxLoggedPath is how much of a request's path a log line shows.
const maxLoggedPath = 256

// logError is err's text for a log line, without the URL (and its query) a *url.Error names.
func logError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return cut(err.Error(), 512)
}
