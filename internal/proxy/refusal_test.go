package proxy

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRefusals: the answers the proxy makes itself, each with its status, an RFC 9209
// Proxy-Status naming the error type, Retry-After when there is one, and no request to the origin
// when the refusal comes before it: the politeness' refusals (robots.txt, a rule too costly to
// evaluate, a wait past its timeout, Redis down) passed through as they are, the destination guard,
// CONNECT's own checks, requests that are not proxy requests, and origins that fail.
func TestRefusals(t *testing.T) {
	var originHits atomic.Int32
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		originHits.Add(1)
		if r.URL.Path == "/slow" {
			time.Sleep(200 * time.Millisecond)
		}
	}))
	defer origin.Close()
	host := strings.TrimPrefix(origin.URL, "http://")
	closed := func() string { // a loopback port nobody listens on
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}()
	refuse := func(ref *Refusal) func(*http.Request) error {
		return func(*http.Request) error { return ref }
	}
	for _, tc := range []struct {
		name       string
		opts       Options
		admit      func(*http.Request) error
		blind      bool   // CONNECTs tunnelled blind (admitted as CONNECTs)
		request    string // the raw request head, without the final CRLF
		wantStatus int
		wantType   string // Proxy-Status error
		wantRetry  string // Retry-After
		wantOrigin bool   // the origin got the request
	}{
		{name: "robots disallows", admit: refuse(&Refusal{Status: 403, Type: "http_request_denied", Reason: "robots", Details: "robots.txt disallows this path for *"}),
			request: "GET http://" + host + "/private HTTP/1.1\r\nHost: " + host, wantStatus: 403, wantType: "http_request_denied"},
		{name: "robots too complex", admit: refuse(&Refusal{Status: 403, Type: "http_request_denied", Reason: "robots", Details: "robots.txt rules are too costly to evaluate"}),
			request: "GET http://" + host + "/x HTTP/1.1\r\nHost: " + host, wantStatus: 403, wantType: "http_request_denied"},
		{name: "wait timeout", admit: refuse(&Refusal{Status: 429, Type: "http_request_denied", Reason: "wait_timeout", Details: "waited", RetryAfter: 1500 * time.Millisecond}),
			request: "GET http://" + host + "/x HTTP/1.1\r\nHost: " + host, wantStatus: 429, wantType: "http_request_denied", wantRetry: "2"},
		{name: "backend down", blind: true, admit: refuse(&Refusal{Status: 503, Type: "proxy_internal_error", Reason: "backend", Details: "Redis", RetryAfter: 5 * time.Second}),
			request: "CONNECT " + host + " HTTP/1.1\r\nHost: " + host, wantStatus: 503, wantType: "proxy_internal_error", wantRetry: "5"},
		{name: "destination guard", request: "GET http://10.0.0.1:" + strings.Split(host, ":")[1] + "/ HTTP/1.1\r\nHost: 10.0.0.1",
			wantStatus: 403, wantType: "destination_ip_prohibited"},
		{name: "destination guard on CONNECT", request: "CONNECT 10.0.0.1:443 HTTP/1.1\r\nHost: 10.0.0.1:443",
			wantStatus: 403, wantType: "destination_ip_prohibited"},
		{name: "CONNECT port", opts: Options{ConnectPorts: []int{443}}, request: "CONNECT example.com:25 HTTP/1.1\r\nHost: example.com:25",
			wantStatus: 403, wantType: "http_request_denied"},
		{name: "CONNECT without port", request: "CONNECT example.com HTTP/1.1\r\nHost: example.com",
			wantStatus: 400, wantType: "http_request_error"},
		{name: "not a proxy request", request: "GET /page HTTP/1.1\r\nHost: " + host,
			wantStatus: 400, wantType: "http_request_error"},
		{name: "origin refuses connections", request: "GET http://" + closed + "/ HTTP/1.1\r\nHost: " + closed,
			wantStatus: 502, wantType: "connection_refused"},
		{name: "origin too slow", opts: Options{ResponseHeaderTimeout: 50 * time.Millisecond},
			request: "GET http://" + host + "/slow HTTP/1.1\r\nHost: " + host, wantStatus: 504, wantType: "http_response_timeout", wantOrigin: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := originHits.Load()
			h := newHarness(t, tc.opts, &fakePolicy{admit: tc.admit, blind: tc.blind})
			_, resp, body := h.rawExchange(t, tc.request+"\r\n\r\n")
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status %s, want %d (body %q)", resp.Status, tc.wantStatus, body)
			}
			if ps := resp.Header.Get("Proxy-Status"); !strings.HasPrefix(ps, ProxyName+"; error="+tc.wantType+"; details=") {
				t.Errorf("Proxy-Status %q, want error=%s", ps, tc.wantType)
			}
			if ra := resp.Header.Get("Retry-After"); ra != tc.wantRetry {
				t.Errorf("Retry-After %q, want %q", ra, tc.wantRetry)
			}
			if !strings.HasPrefix(body, ProxyName+": ") {
				t.Errorf("body %q", body)
			}
			if hit := originHits.Load() != before; hit != tc.wantOrigin {
				t.Errorf("origin contacted: %v, want %v", hit, tc.wantOrigin)
			}
		})
	}
}
