package proxy

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
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
		t.Run(host, func(t *testing.T) {
			cert := mustCert(t, ca, host)
			if _, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: host}); err != nil {
				t.Error(err)
			}
			if again := mustCert(t, ca, host); again != cert {
				t.Error("minted twice")
			}
		})
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

// TestCAMintsOutsideTheLock: while a host's mint is slow (held here by a hook around the real
// mint), a handshake for a cached host and a mint for another host go ahead, and every caller for
// the slow host shares its one mint.
func TestCAMintsOutsideTheLock(t *testing.T) {
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	cached := mustCert(t, ca, "cached.example")
	entered, release := make(chan struct{}), make(chan struct{})
	var slowMints atomic.Int32
	mint := ca.mint
	ca.mint = func(host string) (*tls.Certificate, error) {
		if host == "slow.example" {
			if slowMints.Add(1) == 1 {
				close(entered)
			}
			<-release
		}
		return mint(host)
	}
	const waiters = 4
	slow := make(chan *tls.Certificate, waiters)
	for range waiters {
		go func() {
			c, err := ca.Certificate("slow.example")
			if err != nil {
				t.Error(err)
			}
			slow <- c
		}()
	}
	<-entered

	others := make(chan error, 1)
	go func() {
		c, err := ca.Certificate("cached.example")
		if err == nil && c != cached {
			err = errors.New("cached.example minted again")
		}
		if err == nil {
			_, err = ca.Certificate("new.example")
		}
		others <- err
	}()
	select {
	case err := <-others:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second): // a deadlock detector, not a timing assertion
		close(release)
		t.Fatal("a cached lookup and another host's mint waited for slow.example's mint")
	}

	close(release)
	first := <-slow
	for range waiters - 1 {
		if c := <-slow; c != first {
			t.Error("callers for one host got different certificates")
		}
	}
	if n := slowMints.Load(); n != 1 {
		t.Errorf("slow.example minted %d times by %d concurrent callers, want once", n, waiters)
	}
	if c := mustCert(t, ca, "slow.example"); c != first {
		t.Error("slow.example's certificate was not cached")
	}
}

// TestCAMintFailure: a failed mint is not cached, and its waiters get its error.
func TestCAMintFailure(t *testing.T) {
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	mint, fail := ca.mint, errors.New("no entropy")
	ca.mint = func(string) (*tls.Certificate, error) { return nil, fail }
	if _, err := ca.Certificate("a.example"); !errors.Is(err, fail) {
		t.Fatalf("got %v, want the mint's error", err)
	}
	ca.mint = mint
	if _, err := ca.Certificate("a.example"); err != nil {
		t.Fatalf("after a failed mint: %v", err)
	}
}
