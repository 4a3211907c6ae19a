package proxy

import (
	"net/http"
	"net/textproto"
	"strings"
)

// The header rules of every exchange, in one place: h1 applies them to each request it sends and
// each response head (1xx, 101 and final) it passes back. They are RFC 9110's, in the shape
// net/http/httputil's ReverseProxy gives them (hop-by-hop fields and those Connection names removed;
// Connection: Upgrade and Upgrade kept for an upgrade; Te: trailers kept), written here for h1.

// via is this proxy's Via entry (RFC 9110 7.6.3), added to requests and responses.
const via = "1.1 " + ProxyName

// hopByHop are the fields that describe one connection rather than the message (RFC 9110 7.6.1;
// Keep-Alive and Proxy-Connection from RFC 2068, still sent by clients): a proxy never forwards them.
var hopByHop = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// outgoing is r as sent to the origin: hop-by-hop fields removed but for an upgrade's and
// Te: trailers, no Forwarded or X-Forwarded-* (an origin learns nothing about the pod), Via added, no
// User-Agent when the crawler sent none.
func outgoing(r *http.Request) *http.Request {
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.Close = false
	if r.ContentLength == 0 {
		out.Body = nil
	}
	upgrade := upgradeType(out.Header)
	trailers := hasToken(out.Header["Te"], "trailers")
	removeHopByHop(out.Header)
	if upgrade != "" {
		out.Header.Set("Connection", "Upgrade")
		out.Header.Set("Upgrade", upgrade)
	}
	if trailers { // the client accepts trailers; the origin may only send them if told (RFC 9110 10.1.4)
		out.Header.Set("Te", "trailers")
	}
	for _, k := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
		out.Header.Del(k)
	}
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header.Set("User-Agent", "") // not Go's default: the crawler sent none
	}
	out.Header.Add("Via", via)
	return out
}

// incoming readies an origin's response head for the client: hop-by-hop fields removed (but for a
// 101's Connection: Upgrade and Upgrade) and, on a final response or a 101, Via added.
func incoming(resp *http.Response) {
	upgrade := ""
	if resp.StatusCode == http.StatusSwitchingProtocols {
		upgrade = upgradeType(resp.Header)
	}
	removeHopByHop(resp.Header)
	if upgrade != "" {
		resp.Header.Set("Connection", "Upgrade")
		resp.Header.Set("Upgrade", upgrade)
	}
	if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
		resp.Header.Add("Via", via)
	}
}

// removeHopByHop deletes the hop-by-hop fields from h, and every field its Connection names.
func removeHopByHop(h http.Header) {
	for _, v := range h["Connection"] {
		for name := range strings.SplitSeq(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				delete(h, textproto.CanonicalMIMEHeaderKey(name))
			}
		}
	}
	for _, k := range hopByHop {
		delete(h, k)
	}
}

// upgradeType is the protocol h asks to switch to (or switched to): its Upgrade, when Connection
// names upgrade; else "".
func upgradeType(h http.Header) string {
	if !hasToken(h["Connection"], "upgrade") {
		return ""
	}
	return h.Get("Upgrade")
}

// hasToken reports whether one of the comma-separated lists in values holds token (any case).
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(textproto.TrimString(t), token) {
				return true
			}
		}
	}
	return false
}
