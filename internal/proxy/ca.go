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

	mu     sync.Mutex
	leaves map[string]*tls.Certificate // by host name or IP, bounded by maxLeaves
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
	return &CA{cert: cert, der: der, key: key, leaves: map[string]*tls.Certificate{}}, nil
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
// on first use and cached.
func (c *CA) Certificate(host string) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if leaf, ok := c.leaves[host]; ok && time.Until(leaf.Leaf.NotAfter) > time.Hour {
		return leaf, nil
	}
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
	if len(c.leaves) >= maxLeaves {
		clear(c.leaves)
	}
	cert := &tls.Certificate{Certificate: [][]byte{der, c.der}, PrivateKey: key, Leaf: leaf}
	c.leaves[host] = cert
	return cert, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}
