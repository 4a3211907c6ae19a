package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// TestRecover: a panic while serving a request (here in the politeness, which reads robots.txt and
// origin heads) fails that request with 502, is logged once, counted and handed to Recovered, and
// the proxy goes on serving, for plain requests and inside intercepted tunnels alike.
func TestRecover(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "fine")
	}))
	defer origin.Close()
	pol := &fakePolicy{admit: func(r *http.Request) error {
		if r.URL.Path == "/boom" {
			panic("hostile input")
		}
		return nil
	}}
	h := newHarness(t, Options{}, pol)
	var mu sync.Mutex
	var got []string
	h.srv.Recovered = func(where string, v any) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, fmt.Sprintf("%s: %v", where, v))
	}
	c := h.client()

	resp, err := c.Get(origin.URL + "/boom")
	if err != nil {
		t.Fatalf("no answer after a panic: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(resp.Header.Get("Proxy-Status"), "proxy_internal_error") {
		t.Errorf("after a panic: %d %q, want 502 with Proxy-Status proxy_internal_error", resp.StatusCode, resp.Header.Get("Proxy-Status"))
	}
	if status, body, err := h.get(c, origin.URL+"/ok"); err != nil || status != 200 || body != "fine" {
		t.Fatalf("next request: %d %q %v", status, body, err)
	}

	tc, err := h.connectTLS("a.test:443", "a.test")
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if _, err := io.WriteString(tc, "GET /boom HTTP/1.1\r\nHost: a.test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err = http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		t.Fatalf("inside a tunnel, no answer after a panic: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("inside a tunnel, after a panic: %d, want 502", resp.StatusCode)
	}

	for where, want := range map[string]float64{"handler": 1, "intercepted": 1} {
		if n := h.counter("crawlpolite_panics_total", "where", where); n != want {
			t.Errorf("crawlpolite_panics_total{where=%q} = %v, want %v", where, n, want)
		}
	}
	mu.Lock()
	if len(got) != 2 || got[0] != "handler: hostile input" || got[1] != "intercepted: hostile input" {
		t.Errorf("Recovered got %q", got)
	}
	mu.Unlock()
	if n := strings.Count(h.logs.String(), "\n"); n != 2 || strings.Count(h.logs.String(), `"msg":"panic recovered"`) != 2 {
		t.Errorf("want one log line per panic, got:\n%s", h.logs.String())
	}
}

// counter is the value of the counter name{label=value} on the harness's registry (0 if absent).
func (h *harness) counter(name, label, value string) float64 {
	mfs, err := h.reg.Gather()
	if err != nil {
		return -1
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabel(m, label, value) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// TestRefusalLogs: a refusal's log line names the host and the path (cut to 256 bytes), never the
// query, in plain requests and inside intercepted HTTPS; nor does the error of a failed round trip.
func TestRefusalLogs(t *testing.T) {
	pol := &fakePolicy{admit: func(r *http.Request) error {
		return &Refusal{Status: http.StatusForbidden, Type: "http_request_denied", Reason: "robots", Details: "disallowed",
			Err: &url.Error{Op: "Get", URL: r.URL.String(), Err: errors.New("refused by test")}}
	}}
	h := newHarness(t, Options{}, pol)
	c := h.client()
	long := "/" + strings.Repeat("p", 1000)
	for _, u := range []string{"http://a.test" + long + "?access_token=SECRET1", "https://a.test/x?X-Amz-Signature=SECRET2"} {
		if status, _, err := h.get(c, u); err != nil || status != http.StatusForbidden {
			t.Fatalf("%s: %d %v", u, status, err)
		}
	}
	logs := h.logs.String()
	if strings.Contains(logs, "SECRET") || strings.Contains(logs, "access_token") {
		t.Errorf("a query reached the logs:\n%s", logs)
	}
	for _, want := range []string{`"host":"a.test"`, `"path":"/` + strings.Repeat("p", 255) + `"`, `"host":"a.test:443","path":"/x"`, `"error":"refused by test"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
}
