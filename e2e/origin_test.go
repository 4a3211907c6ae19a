package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/crawlpolite/crawlpolite/internal/rxstamp"
)

// visit is one request an origin received.
type visit struct {
	Path       string
	Start, End time.Time
	InFlight   int    // at the origin, this one included, when it started
	From       string // the connection's remote address
}

// origin is a test web site on its own loopback address, recording every request.
type origin struct {
	Name   string
	Host   string // the URL's host: 127.0.1.N (port 80) or 127.0.1.N (443, TLS)
	TLS    bool
	Robots string        // robots.txt body; empty for 404
	Page   time.Duration // how long a page takes
	// RetryAfter, when set, makes the first request for /busy answer 429 with this Retry-After.
	RetryAfter int

	mu       sync.Mutex
	visits   []visit
	inFlight int
	busyOnce bool
	srv      *http.Server
}

func (o *origin) URL(path string) string {
	scheme := "http"
	if o.TLS {
		scheme = "https"
	}
	return scheme + "://" + o.Host + path
}

func (o *origin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	o.inFlight++
	at, _ := rxstamp.ArrivedAt(r)
	v := visit{Path: r.URL.Path, Start: at, InFlight: o.inFlight, From: r.RemoteAddr}
	busy := r.URL.Path == "/busy" && o.RetryAfter > 0 && !o.busyOnce
	if busy {
		o.busyOnce = true
	}
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		o.inFlight--
		v.End = time.Now()
		o.visits = append(o.visits, v)
		o.mu.Unlock()
	}()
	switch {
	case r.URL.Path == "/robots.txt":
		if o.Robots == "" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(o.Robots))
	case busy:
		w.Header().Set("Retry-After", strconv.Itoa(o.RetryAfter))
		w.WriteHeader(http.StatusTooManyRequests)
	default:
		time.Sleep(o.Page)
		_, _ = w.Write([]byte("page " + r.URL.Path + "\n"))
	}
}

// Visits returns what the origin received so far, ordered by start.
func (o *origin) Visits() []visit {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := slices.Clone(o.visits)
	slices.SortFunc(out, func(a, b visit) int { return a.Start.Compare(b.Start) })
	return out
}

// Reset forgets what was recorded.
func (o *origin) Reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.visits, o.busyOnce = nil, false
}

// testCA signs the HTTPS origins' certificates; the sidecars are told to trust it (SSL_CERT_FILE).
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	File string // PEM
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "crawlpolite e2e origins"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	file := filepath.Join(t.TempDir(), "origins-ca.crt")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, File: file}
}

func (ca *testCA) leaf(t *testing.T, ip net.IP) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: ip.String()},
		IPAddresses: []net.IP{ip}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// nextOriginIP hands out 127.0.1.N: every origin is its own host, on the standard ports.
var (
	originMu sync.Mutex
	originN  = 0
)

// startOrigin serves o on the next loopback address, port 80 or 443 (the suite runs as root).
func startOrigin(t *testing.T, ca *testCA, o *origin) *origin {
	t.Helper()
	originMu.Lock()
	originN++
	ip := net.IPv4(127, 0, 1, byte(originN))
	originMu.Unlock()
	port := "80"
	if o.TLS {
		port = "443"
	}
	o.Host = ip.String()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), port))
	if err != nil {
		t.Fatalf("origin %s on %s:%s (the suite binds ports 80 and 443 on 127.0.1.x, as root): %v", o.Name, ip, port, err)
	}
	// Plain HTTP arrivals are timed by the kernel's receive stamps (a loaded machine would otherwise
	// show gaps short by the origin's own scheduling); HTTPS ones when the handler runs (the stamp
	// would be the handshake's, which the sidecar completes before its turn's start).
	o.srv = &http.Server{Handler: o, ReadHeaderTimeout: 10 * time.Second}
	if !o.TLS {
		ln = rxstamp.Listener(ln)
		o.srv.ConnContext = rxstamp.ConnContext
	}
	if o.TLS {
		o.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{ca.leaf(t, ip)}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, o.srv.TLSConfig)
	}
	go func() {
		if err := o.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("origin %s: %v", o.Name, err)
		}
	}()
	t.Cleanup(func() { _ = o.srv.Close() })
	return o
}
