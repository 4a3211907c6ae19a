package certs

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"maps"
	"math/big"
	"os"
	"path/filepath"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

// Self manages a self-signed serving certificate.
type Self struct {
	Client        client.Client // uncached: it runs before the manager's cache
	Namespace     string        // the webhook's
	SecretName    string
	Service       string // the webhook's Service: the certificate names service.namespace.svc
	WebhookConfig string // MutatingWebhookConfiguration whose caBundle is kept current
	CertDir       string // tls.crt and tls.key are written here
	Validity      time.Duration
	Now           func() time.Time // for tests; time.Now when nil
}

// checkEvery is how often each replica compares its files with the Secret, so a renewal by one
// replica reaches the others within it.
const checkEvery = 5 * time.Minute

const (
	keyCA      = "ca.crt"
	keyCAKey   = "ca.key"
	keyCert    = corev1.TLSCertKey
	keyCertKey = corev1.TLSPrivateKeyKey
)

func (s *Self) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Ensure makes the Secret, the files and the caBundle current, renewing what has used two thirds of
// its validity. Replicas racing to renew settle on whichever Secret write won.
func (s *Self) Ensure(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		var sec corev1.Secret
		err := s.Client.Get(ctx, types.NamespacedName{Namespace: s.Namespace, Name: s.SecretName}, &sec)
		exists := err == nil
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("certs: read secret: %w", err)
		}
		data, changed, err := s.renew(sec.Data)
		if err != nil {
			return err
		}
		if changed {
			sec.Data = data
			sec.Type = corev1.SecretTypeTLS
			if exists {
				err = s.Client.Update(ctx, &sec)
			} else {
				sec.ObjectMeta = metav1.ObjectMeta{Namespace: s.Namespace, Name: s.SecretName,
					Labels: map[string]string{"app.kubernetes.io/managed-by": "crawlpolite"}}
				err = s.Client.Create(ctx, &sec)
			}
			if (apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) && attempt < 3 {
				continue // another replica renewed first: use its
			}
			if err != nil {
				return fmt.Errorf("certs: write secret: %w", err)
			}
			logf.FromContext(ctx).Info("webhook certificate renewed", "secret", s.SecretName)
		}
		if err := s.writeFiles(data); err != nil {
			return err
		}
		return s.patchCABundle(ctx, data[keyCA])
	}
}

// Start keeps the certificate current until ctx ends (a manager Runnable on every replica).
func (s *Self) Start(ctx context.Context) error {
	t := time.NewTicker(checkEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := s.Ensure(ctx); err != nil {
				logf.FromContext(ctx).Error(err, "webhook certificate not renewed; retrying", "in", checkEvery)
			}
		}
	}
}

// NeedLeaderElection is false: every replica serves, so every replica needs the files.
func (s *Self) NeedLeaderElection() bool { return false }

// renew returns the Secret data with a fresh CA and/or serving certificate where needed.
func (s *Self) renew(in map[string][]byte) (map[string][]byte, bool, error) {
	now := s.now()
	out := maps.Clone(in)
	if out == nil {
		out = map[string][]byte{}
	}
	ca, caKey, err := parsePair(in[keyCA], in[keyCAKey])
	caFresh := err == nil && fresh(ca, now, 4*s.Validity)
	if !caFresh {
		// The CA lives four times as long as the serving certificate, so a serving renewal never
		// needs a new caBundle; a CA renewal issues a new serving certificate too.
		prev, prevErr := ca, err
		ca, caKey, err = issue(nil, nil, "crawlpolite-webhook-ca", nil, now, 4*s.Validity)
		if err != nil {
			return nil, false, err
		}
		out[keyCA], out[keyCAKey] = encode(ca, caKey)
		if prevErr == nil && now.Before(prev.NotAfter) {
			// Replicas still serving under the previous CA stay trusted until they catch up.
			out[keyCA] = append(out[keyCA], pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: prev.Raw})...)
		}
	}
	names := []string{s.Service, s.Service + "." + s.Namespace, s.Service + "." + s.Namespace + ".svc"}
	cert, _, err := parsePair(in[keyCert], in[keyCertKey])
	if caFresh && err == nil && fresh(cert, now, s.Validity) && cert.CheckSignatureFrom(ca) == nil && cert.VerifyHostname(names[2]) == nil {
		return out, false, nil
	}
	cert, key, err := issue(ca, caKey, names[2], names, now, s.Validity)
	if err != nil {
		return nil, false, err
	}
	out[keyCert], out[keyCertKey] = encode(cert, key)
	return out, true, nil
}

// fresh: valid now and less than two thirds of lifetime used.
func fresh(c *x509.Certificate, now time.Time, lifetime time.Duration) bool {
	return now.After(c.NotBefore) && now.Before(c.NotAfter.Add(-lifetime/3))
}

// issue creates a certificate signed by parent (self-signed, a CA, when parent is nil).
func issue(parent *x509.Certificate, parentKey *ecdsa.PrivateKey, cn string, dns []string, now time.Time, validity time.Duration) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"crawlpolite"}},
		NotBefore:    now.Add(-time.Hour), // tolerate clock skew between nodes
		NotAfter:     now.Add(validity),
		DNSNames:     dns,
	}
	signer, signerKey := tmpl, key
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		signer, signerKey = parent, parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		return nil, nil, err
	}
	c, err := x509.ParseCertificate(der)
	return c, key, err
}

func encode(c *x509.Certificate, k *ecdsa.PrivateKey) (certPEM, keyPEM []byte) {
	der, _ := x509.MarshalECPrivateKey(k)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

func parsePair(certPEM, keyPEM []byte) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, err
	}
	k, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("certs: key is not ECDSA")
	}
	c, err := x509.ParseCertificate(pair.Certificate[0])
	return c, k, err
}

// writeFiles replaces tls.crt and tls.key when they differ, each by an atomic rename; the key first,
// as the watcher reloads on the certificate.
func (s *Self) writeFiles(data map[string][]byte) error {
	if err := os.MkdirAll(s.CertDir, 0o700); err != nil {
		return err
	}
	for _, name := range []string{keyCertKey, keyCert} {
		path := filepath.Join(s.CertDir, name)
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data[name]) {
			continue
		}
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, data[name], 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
	}
	return nil
}

// patchCABundle sets every webhook's caBundle of the configuration to ca.
func (s *Self) patchCABundle(ctx context.Context, ca []byte) error {
	if s.WebhookConfig == "" {
		return nil
	}
	var cfg admissionregistrationv1.MutatingWebhookConfiguration
	if err := s.Client.Get(ctx, types.NamespacedName{Name: s.WebhookConfig}, &cfg); err != nil {
		return fmt.Errorf("certs: read webhook configuration: %w", err)
	}
	patch := client.MergeFromWithOptions(cfg.DeepCopy(), client.MergeFromWithOptimisticLock{})
	changed := false
	for i := range cfg.Webhooks {
		if !bytes.Equal(cfg.Webhooks[i].ClientConfig.CABundle, ca) {
			cfg.Webhooks[i].ClientConfig.CABundle = ca
			changed = true
		}
	}
	if !changed {
		return nil
	}
	if err := s.Client.Patch(ctx, &cfg, patch); err != nil {
		return fmt.Errorf("certs: patch caBundle: %w", err)
	}
	return nil
}
