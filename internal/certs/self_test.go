package certs_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"path/filepath"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/crawlpolite/crawlpolite/internal/certs"
	"github.com/crawlpolite/crawlpolite/internal/kubetest"
)

// TestSelf: on a real API server, Ensure creates the Secret, writes the files and patches the
// caBundle; again it changes nothing; once two thirds of the validity have passed it renews the
// serving certificate under the same CA, and a server using controller-runtime's certwatcher (as
// the webhook server does) presents the new one without a restart. A second replica adopts the
// first one's Secret instead of issuing its own.
func TestSelf(t *testing.T) {
	c := cluster(t)
	ctx := t.Context()
	none := admissionregistrationv1.SideEffectClassNone
	whc := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "crawlpolite"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: "inject.crawlpolite.io", AdmissionReviewVersions: []string{"v1"}, SideEffects: &none,
			ClientConfig: admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{
				Namespace: "crawlpolite-system", Name: "crawlpolite-webhook", Path: new("/mutate--v1-pod")}},
		}},
	}
	if err := c.Create(ctx, whc); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	dir := t.TempDir()
	s := &certs.Self{Client: c, Namespace: "crawlpolite-system", SecretName: "crawlpolite-webhook-tls", Service: "crawlpolite-webhook",
		WebhookConfig: "crawlpolite", CertDir: dir, Validity: 90 * 24 * time.Hour, Now: func() time.Time { return now }}
	if err := s.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	sec := secret(t, c)
	if err := c.Get(ctx, types.NamespacedName{Name: "crawlpolite"}, whc); err != nil {
		t.Fatal(err)
	}
	if string(whc.Webhooks[0].ClientConfig.CABundle) != string(sec.Data["ca.crt"]) {
		t.Fatal("caBundle is not the Secret's CA")
	}
	first := serving(t, sec)
	if err := first.VerifyHostname("crawlpolite-webhook.crawlpolite-system.svc"); err != nil {
		t.Error(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(whc.Webhooks[0].ClientConfig.CABundle)
	if _, err := first.Verify(x509.VerifyOptions{Roots: roots, DNSName: "crawlpolite-webhook.crawlpolite-system.svc", CurrentTime: now}); err != nil {
		t.Fatalf("serving certificate does not verify against the caBundle: %v", err)
	}

	// A server that reloads like the webhook server.
	cw, err := certwatcher.New(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	cw.WithWatchInterval(100 * time.Millisecond)
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = cw.Start(wctx) }()
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: cw.GetCertificate})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _ = conn.(*tls.Conn).Handshake(); _ = conn.Close() }()
		}
	}()
	presented := func() *x509.Certificate {
		conn, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reads the certificate only
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0]
	}
	if !presented().Equal(first) {
		t.Fatal("server does not present the issued certificate")
	}

	// Idempotent: nothing changes a day later.
	now = now.Add(24 * time.Hour)
	rv := sec.ResourceVersion
	if err := s.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if sec = secret(t, c); sec.ResourceVersion != rv {
		t.Error("Ensure rewrote a current Secret")
	}

	// Past two thirds of the validity: renewed, same CA, presented without a restart.
	now = now.Add(60 * 24 * time.Hour)
	if err := s.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	renewed := secret(t, c)
	second := serving(t, renewed)
	if second.Equal(first) || string(renewed.Data["ca.crt"]) != string(sec.Data["ca.crt"]) {
		t.Fatal("want a new serving certificate under the same CA")
	}
	deadline := time.Now().Add(10 * time.Second)
	for !presented().Equal(second) {
		if time.Now().After(deadline) {
			t.Fatal("the server still presents the old certificate 10s after renewal")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A second replica with its own directory adopts the Secret.
	other := *s
	other.CertDir = t.TempDir()
	if err := other.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if secret(t, c).ResourceVersion != renewed.ResourceVersion {
		t.Error("a second replica reissued a current certificate")
	}
}

// cluster is a real API server with the manager's namespace.
func cluster(t *testing.T) client.Client {
	t.Helper()
	c := kubetest.Client(t, kubetest.Start(t, &envtest.Environment{}))
	kubetest.Namespaces(t, c, "crawlpolite-system")
	return c
}

func secret(t *testing.T, c client.Client) *corev1.Secret {
	t.Helper()
	var s corev1.Secret
	if err := c.Get(t.Context(), types.NamespacedName{Namespace: "crawlpolite-system", Name: "crawlpolite-webhook-tls"}, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func serving(t *testing.T, s *corev1.Secret) *x509.Certificate {
	t.Helper()
	pair, err := tls.X509KeyPair(s.Data["tls.crt"], s.Data["tls.key"])
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCARenewal: when the CA itself is renewed, the caBundle keeps the previous CA, so replicas
// still serving a certificate from it stay trusted until they pick up the new one.
func TestCARenewal(t *testing.T) {
	c := cluster(t)
	ctx := t.Context()
	now := time.Now()
	s := &certs.Self{Client: c, Namespace: "crawlpolite-system", SecretName: "crawlpolite-webhook-tls", Service: "crawlpolite-webhook",
		CertDir: t.TempDir(), Validity: 24 * time.Hour, Now: func() time.Time { return now }}
	if err := s.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	// Checks every 8 hours (the serving certificate is renewed at two thirds, 16h) until the CA is renewed.
	old := secret(t, c)
	var renewed *corev1.Secret
	for range 15 {
		now = now.Add(8 * time.Hour)
		if err := s.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
		if renewed = secret(t, c); string(renewed.Data["ca.key"]) != string(old.Data["ca.key"]) {
			break
		}
		old = renewed
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(renewed.Data["ca.crt"]) {
		t.Fatal("no CA bundle")
	}
	for name, cert := range map[string]*x509.Certificate{"previous": serving(t, old), "new": serving(t, renewed)} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "crawlpolite-webhook.crawlpolite-system.svc", CurrentTime: now}); err != nil {
			t.Errorf("%s serving certificate does not verify against the renewed bundle: %v", name, err)
		}
	}
	if string(renewed.Data["ca.crt"]) == string(old.Data["ca.crt"]) {
		t.Error("CA not renewed")
	}
}
