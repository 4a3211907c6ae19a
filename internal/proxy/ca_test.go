package proxy

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
)

// newCAInDir creates a CA and writes its files into a fresh temporary directory.
func newCAInDir(t *testing.T) (*CA, string) {
	t.Helper()
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := ca.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	return ca, dir
}

func TestCAMintsTrustedCertificates(t *testing.T) {
	ca, dir := newCAInDir(t)
	pemCA, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := os.ReadFile(filepath.Join(dir, "bundle.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(bundle, pemCA) {
		t.Fatal("bundle does not end with the CA")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		if bytes.Contains(b, []byte("PRIVATE KEY")) {
			t.Fatalf("%s holds a private key: the CA key must never be written", e.Name())
		}
	}
	if len(entries) != 2 {
		t.Fatalf("files written: %v", entries)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(bundle) {
		t.Fatal("bundle does not parse")
	}
	for _, host := range []string{"example.com", "xn--bcher-kva.example", "127.0.0.1", "::1"} {
		cert, err := ca.Certificate(host)
		if err != nil {
			t.Fatal(err)
		}
		opts := x509.VerifyOptions{Roots: pool, DNSName: host}
		if _, err := cert.Leaf.Verify(opts); err != nil {
			t.Errorf("%s: %v", host, err)
		}
		again, _ := ca.Certificate(host)
		if again != cert {
			t.Errorf("%s: minted twice", host)
		}
	}
	if _, err := mustCert(t, ca, "example.com").Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "other.com"}); err == nil {
		t.Error("a certificate for example.com verified for other.com")
	}
}

// TestCAServesTLS completes a real TLS handshake with a client that trusts only the written bundle.
func TestCAServesTLS(t *testing.T) {
	ca, dir := newCAInDir(t)
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		return ca.Certificate(h.ServerName)
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	pool := x509.NewCertPool()
	b, _ := os.ReadFile(filepath.Join(dir, "ca.crt"))
	pool.AppendCertsFromPEM(b)
	conn, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "crawl.example"})
	if err != nil {
		t.Fatalf("handshake with a client trusting the CA: %v", err)
	}
	conn.Close()
}

func mustCert(t *testing.T, ca *CA, host string) *tls.Certificate {
	t.Helper()
	c, err := ca.Certificate(host)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
