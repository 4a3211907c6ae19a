package controller

import (
	"bytes"
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/crawlpolite/crawlpolite/internal/inject"
)

// redisPassword reads the password from the source Secret; nil when none is configured.
func (r *Reconciler) redisPassword(ctx context.Context) ([]byte, error) {
	if r.RedisSecret.Name == "" {
		return nil, nil
	}
	var s corev1.Secret
	if err := r.Client.Get(ctx, r.RedisSecret, &s); err != nil {
		return nil, fmt.Errorf("redis password secret %s: %w", r.RedisSecret, err)
	}
	pw, ok := s.Data[inject.RedisSecretKey]
	if !ok || len(pw) == 0 {
		return nil, fmt.Errorf("redis password secret %s has no %q key", r.RedisSecret, inject.RedisSecretKey)
	}
	return pw, nil
}

// deliverSecret makes ns's copy of the Redis password Secret hold password. The copy carries only
// the password, never the source's other keys.
func (r *Reconciler) deliverSecret(ctx context.Context, ns string, password []byte) error {
	var s corev1.Secret
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: inject.RedisSecret}, &s)
	switch {
	case apierrors.IsNotFound(err):
		s = corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: inject.RedisSecret, Labels: map[string]string{managedBy: managedByValue}},
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{inject.RedisSecretKey: password},
		}
		return r.Client.Create(ctx, &s)
	case err != nil:
		return err
	case len(s.Data) == 1 && bytes.Equal(s.Data[inject.RedisSecretKey], password) && s.Labels[managedBy] == managedByValue:
		return nil
	}
	s.Data = map[string][]byte{inject.RedisSecretKey: password}
	s.StringData = nil
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	s.Labels[managedBy] = managedByValue
	return r.Client.Update(ctx, &s)
}
