package proxy

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// CA is the sidecar's per-pod certificate authority for TLS interception. Its key lives in memory
// only; the certificate (and a bundle of the system roots plus it) is written for the app containers
// to trust. A pod's CA is worthless outside the pod: it dies with the sidecar.
type CA struct {
	cert *x509.Certificate
	der  []byte
	key  crypto.Signer

	// mint makes a leaf for a host: mintLeaf, or a test's hook around it.
	mint func(host string) (*tls.Certificate, error)

	mu      sync.Mutex
	leaves  map[string]*tls.Certificate // by host name or IP, bounded by maxLeaves
	minting map[string]*minting         // mints in flight, by host
}

// minting is one host's mint in flight; done is closed once cert and err are set.
type minting struct {
	done chan struct{}
	cert *tls.Certificate
	err  error
}

// maxLeaves bounds the minted-certificate cache; past it the cache starts over (minting is ~0.1 ms).
const maxLeaves = 10000

// leafLife is how long a minted certificate is valid; the CA lives as long as the pod (up to caLife).
const (
	leafLife = 24 * time.Hour
	caLife   = 397 * 24 * time.Hour
)

// NewCA creates a CA with a fresh ECDSA P-256 key.
func NewCA() (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("proxy: CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"crawlpolite"}, CommonName: "crawlpolite per-pod CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caLife),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("proxy: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	ca := &CA{cert: cert, der: der, key: key, leaves: map[string]*tls.Certificate{}, minting: map[string]*minting{}}
	ca.mint = ca.mintLeaf
	return ca, nil
}

// systemRoots are the usual places of the system trust store (Debian, RHEL, Alpine).
var systemRoots = []string{"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"}

// WriteFiles writes ca.crt (the CA alone) and bundle.crt (the first trust store found, the one
// SSL_CERT_FILE names first, then the CA) into dir, created if need be, for the app containers'
// SSL_CERT_FILE, REQUESTS_CA_BUNDLE, NODE_EXTRA_CA_CERTS and CURL_CA_BUNDLE. The key is never written.
func (c *CA) WriteFiles(dir string) error {
	pemCA := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.der})
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("proxy: CA directory: %w", err)
	}
	var bundle []byte
	for _, p := range append([]string{os.Getenv("SSL_CERT_FILE")}, systemRoots...) {
		if b, err := os.ReadFile(p); err == nil {
			bundle = append(b, '\n')
			break
		}
	}
	bundle = append(bundle, pemCA...)
	for name, data := range map[string][]byte{"ca.crt": pemCA, "bundle.crt": bundle} {
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, data, 0o644); err != nil {
			return fmt.Errorf("proxy: write %s: %w", name, err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil { // readers never see half a file
			return fmt.Errorf("proxy: write %s: %w", name, err)
		}
	}
	return nil
}

// Certificate returns a certificate for host (a DNS name or an IP literal) signed by the CA, minted
// on first use and cached. A mint runs outside the lock, one per host at a time: callers asking for
// a host being minted wait for that mint, and nobody else waits for it (a handshake for a cached
// host, or a mint for another, goes ahead).
func (c *CA) Certificate(host string) (*tls.Certificate, error) {
	c.mu.Lock()
	if leaf, ok := c.leaves[host]; ok && time.Until(leaf.Leaf.NotAfter) > time.Hour {
		c.mu.Unlock()
		return leaf, nil
	}
	if m, ok := c.minting[host]; ok {
		c.mu.Unlock()
		<-m.done
		return m.cert, m.err
	}
	m := &minting{done: make(chan struct{})}
	c.minting[host] = m
	c.mu.Unlock()
	defer func() { // even if mint panics, so that no waiter is left behind
		c.mu.Lock()
		delete(c.minting, host)
		if m.err == nil && m.cert != nil {
			if len(c.leaves) >= maxLeaves {
				clear(c.leaves)
			}
			c.leaves[host] = m.cert
		}
		c.mu.Unlock()
		if m.cert == nil && m.err == nil {
			m.err = fmt.Errorf("proxy: mint certificate for %s: no certificate", host)
		}
		close(m.done)
	}()
	m.cert, m.err = c.mint(host)
	return m.cert, m.err
}

// mintLeaf makes a certificate for host with a fresh key, signed by the CA.
func (c *CA) mintLeaf(host string) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: host},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(leafLife),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if a, err := netip.ParseAddr(host); err == nil {
		tmpl.IPAddresses = append(tmpl.IPAddresses, a.AsSlice())
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, key.Public(), c.key)
	if err != nil {
		return nil, fmt.Errorf("proxy: mint certificate for %s: %w", host, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der, c.der}, PrivateKey: key, Leaf: leaf}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}
