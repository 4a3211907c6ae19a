package proxy

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// trustOrigin makes the proxy's upstream TLS trust origin's certificate for the test (the
// proxy's own harness must be created after). Tests that call it do not run in parallel.
func trustOrigin(t *testing.T, origin *httptest.Server) {
	t.Helper()
	saved := upstreamTLS
	upstreamTLS = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: origin.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	t.Cleanup(func() { upstreamTLS = saved })
}

// TestConnect: HTTPS through CONNECT, intercepted (the client sees a certificate from the per-pod
// CA; every request inside is admitted on its own, as https://authority/path) and blind (the client
// sees the origin's own certificate; the tunnel is admitted once, as a CONNECT).
func TestConnect(t *testing.T) {
	origin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "secure "+r.URL.Path)
	}))
	defer origin.Close()
	trustOrigin(t, origin)
	authority := strings.TrimPrefix(origin.URL, "https://")
	for _, tc := range []struct {
		name       string
		blind      bool
		wantIssuer string // the certificate's issuer the client sees
		wantAdmit  []string
	}{
		{name: "intercepted", wantIssuer: "crawlpolite", wantAdmit: []string{"https://" + authority + "/a", "https://" + authority + "/b"}},
		{name: "blind", blind: true, wantIssuer: "Acme Co", wantAdmit: []string{"https://" + authority}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pol := &fakePolicy{blind: tc.blind}
			h := newHarness(t, Options{}, pol)
			c := h.client()
			tr := c.Transport.(*http.Transport)
			t.Cleanup(tr.CloseIdleConnections)                       // before the drain: a blind tunnel lasts as long as its connection
			tr.TLSClientConfig.RootCAs.AddCert(origin.Certificate()) // a blind tunnel shows the origin's
			var issuer string
			for _, path := range []string{"/a", "/b"} {
				resp, err := c.Get(origin.URL + path)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(b) != "secure "+path {
					t.Fatalf("GET %s: %s %q", path, resp.Status, b)
				}
				issuer = strings.Join(resp.TLS.PeerCertificates[0].Issuer.Organization, ",")
			}
			if !strings.Contains(issuer, tc.wantIssuer) {
				t.Errorf("certificate issued by %q, want %q", issuer, tc.wantIssuer)
			}
			if got := pol.admitted(); strings.Join(got, " ") != strings.Join(tc.wantAdmit, " ") {
				t.Errorf("admitted %q, want %q", got, tc.wantAdmit)
			}
		})
	}
}

// TestConnectRaw: what a CONNECT answer looks like on the wire: 200 with Via, and the bytes the
// client sent right after its CONNECT (before reading the answer) reach the origin of a blind tunnel.
func TestConnectRaw(t *testing.T) {
	addr := rawOrigin(t, func(c net.Conn) { _, _ = io.Copy(c, c) })
	h := newHarness(t, Options{}, &fakePolicy{blind: true})
	c, err := net.Dial("tcp", h.url.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(c, "CONNECT "+addr+" HTTP/1.1\r\nHost: "+addr+"\r\n\r\nearly\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Via") != via {
		t.Fatalf("CONNECT answered %s, Via %q", resp.Status, resp.Header.Get("Via"))
	}
	if line, err := br.ReadString('\n'); err != nil || line != "early\n" {
		t.Fatalf("tunnel echoed %q, %v", line, err)
	}
}
