package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The in-process harness: a real Server on a loopback listener, a fake Politeness (the true
// boundary: internal/throttle implements it), real origins (httptest, or raw TCP for hostile bytes).

// fakePolicy admits everything at once, unless admit says otherwise; it records what it admitted.
type fakePolicy struct {
	admit func(r *http.Request) error // nil: admit
	turn  func() Turn                 // nil: fakeTurn
	blind bool                        // every CONNECT a blind tunnel

	mu   sync.Mutex
	seen []string // URLs given to Admit
}

func (f *fakePolicy) Admit(_ context.Context, r *http.Request) (Turn, error) {
	f.mu.Lock()
	f.seen = append(f.seen, r.URL.String())
	f.mu.Unlock()
	if f.admit != nil {
		if err := f.admit(r); err != nil {
			return nil, err
		}
	}
	if f.turn != nil {
		return f.turn(), nil
	}
	return fakeTurn{}, nil
}

func (f *fakePolicy) Tunnel(string) bool { return f.blind }

func (f *fakePolicy) admitted() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.seen...)
}

type fakeTurn struct{}

func (fakeTurn) Wait(context.Context) error   { return nil }
func (fakeTurn) AfterLost(func()) func() bool { return func() bool { return true } }
func (fakeTurn) Response(int, http.Header)    {}
func (fakeTurn) Sent()                        {}
func (fakeTurn) Release()                     {}

var _ Politeness = (*fakePolicy)(nil)

type harness struct {
	srv  *Server
	url  *url.URL
	pol  *fakePolicy
	ca   *CA
	reg  *prometheus.Registry
	logs *syncBuffer
}

// syncBuffer collects the proxy's JSON log lines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newHarness starts a proxy with opts (loopback allowed; every CONNECT port allowed unless opts
// lists some).
func newHarness(t *testing.T, opts Options, pol *fakePolicy) *harness {
	t.Helper()
	if pol == nil {
		pol = &fakePolicy{}
	}
	if opts.ResponseHeaderTimeout == 0 {
		opts.ResponseHeaderTimeout = 3 * time.Second
	}
	opts.AnyConnectPort = len(opts.ConnectPorts) == 0
	guard, err := NewGuard("127.0.0.0/8,::1/128")
	if err != nil {
		t.Fatal(err)
	}
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{pol: pol, ca: ca, reg: prometheus.NewRegistry(), logs: &syncBuffer{}}
	log := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	h.srv, err = New(opts, pol, ca, NewUpstream(opts, guard), log, h.reg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = h.srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.srv.Shutdown(ctx)
	})
	h.url = &url.URL{Scheme: "http", Host: ln.Addr().String()}
	return h
}

// client sends through the proxy and trusts its CA.
func (h *harness) client() *http.Client {
	roots := x509.NewCertPool()
	roots.AddCert(h.ca.cert)
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		Proxy:           http.ProxyURL(h.url),
		TLSClientConfig: &tls.Config{RootCAs: roots},
	}}
}

// get fetches u through the proxy, returning the status and body; err when no response came.
func (h *harness) get(c *http.Client, u string) (int, string, error) {
	resp, err := c.Get(u)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// rawOrigin serves each accepted connection with handle, on its own goroutine; it returns the
// origin's address.
func rawOrigin(t *testing.T, handle func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// readRequest reads one request head (and no body) from br.
func readRequest(br interface{ ReadString(byte) (string, error) }) (string, error) {
	var first string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return "", err
		}
		if first == "" {
			first = line
		}
		if line == "\r\n" {
			return first, nil
		}
	}
}

// connectTLS opens a CONNECT tunnel to authority through the proxy and starts TLS in it with
// serverName, trusting the proxy's CA.
func (h *harness) connectTLS(authority, serverName string) (*tls.Conn, error) {
	conn, err := net.DialTimeout("tcp", h.url.Host, 5*time.Second)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, "CONNECT "+authority+" HTTP/1.1\r\nHost: "+authority+"\r\n\r\n"); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		conn.Close()
		return nil, err
	}
	if resp.StatusCode != 200 {
		conn.Close()
		return nil, fmt.Errorf("CONNECT %s: %s", authority, resp.Status)
	}
	roots := x509.NewCertPool()
	roots.AddCert(h.ca.cert)
	tc := tls.Client(conn, &tls.Config{ServerName: serverName, RootCAs: roots, NextProtos: []string{"http/1.1"}})
	if err := tc.Handshake(); err != nil {
		conn.Close()
		return nil, err
	}
	return tc, nil
}

// expectContinue sets how long a request with Expect: 100-continue waits for the origin's 100
// before it sends its body anyway.
func (s *Server) expectContinue(d time.Duration) { s.h1.expectTimeout = d }
