package controller

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/crawlpolite/crawlpolite/internal/inject"
)

// orphanedSince marks a delivered object whose namespace has no injected pods left, with the time
// that was first seen; kept on the object so a new leader keeps counting from there.
const orphanedSince = "crawlpolite.io/orphaned-since"

// DefaultCleanupGrace is how long a namespace keeps its delivered policy (and Redis Secret) after
// its last injected pod is gone or finished: long enough for a rollout that replaces every pod, or a CronJob's
// next run, to find them in place.
const DefaultCleanupGrace = 10 * time.Minute

// cleanup removes the delivered objects from namespaces that have had no injected pods for the
// grace period, and the Secret copies everywhere once no password is configured. It returns how
// long until the next removal is due (0: none pending).
func (r *Reconciler) cleanup(ctx context.Context, active []string, password []byte) (time.Duration, error) {
	grace := r.CleanupGrace
	if grace == 0 {
		grace = DefaultCleanupGrace
	}
	now := time.Now()
	var next time.Duration
	var cms corev1.ConfigMapList
	if err := r.Client.List(ctx, &cms, client.MatchingLabels{managedBy: managedByValue}); err != nil {
		return 0, err
	}
	orphans := map[string]bool{}
	for i := range cms.Items {
		cm := &cms.Items[i]
		if cm.Name != inject.PolicyConfigMap || slices.Contains(active, cm.Namespace) {
			continue
		}
		orphans[cm.Namespace] = true
		since, err := time.Parse(time.RFC3339, cm.Annotations[orphanedSince])
		if err != nil { // first seen orphaned (or a mark nobody can read): start counting now
			patch := client.MergeFrom(cm.DeepCopy())
			if cm.Annotations == nil {
				cm.Annotations = map[string]string{}
			}
			cm.Annotations[orphanedSince] = now.UTC().Format(time.RFC3339)
			if err := r.Client.Patch(ctx, cm, patch); err != nil && !apierrors.IsNotFound(err) {
				return 0, fmt.Errorf("mark %s/%s: %w", cm.Namespace, cm.Name, err)
			}
			since = now
		}
		if left := since.Add(grace).Sub(now); left > 0 {
			if next == 0 || left < next {
				next = left
			}
			continue
		}
		if err := r.Client.Delete(ctx, cm); client.IgnoreNotFound(err) != nil {
			return 0, fmt.Errorf("remove %s/%s: %w", cm.Namespace, cm.Name, err)
		}
		delete(orphans, cm.Namespace)
	}
	var secrets corev1.SecretList
	if err := r.Client.List(ctx, &secrets, client.MatchingLabels{managedBy: managedByValue}); err != nil {
		return 0, err
	}
	for i := range secrets.Items {
		s := &secrets.Items[i]
		keep := password != nil && (slices.Contains(active, s.Namespace) || orphans[s.Namespace])
		if s.Name != inject.RedisSecret || keep {
			continue
		}
		if err := r.Client.Delete(ctx, s); client.IgnoreNotFound(err) != nil {
			return 0, fmt.Errorf("remove %s/%s: %w", s.Namespace, s.Name, err)
		}
	}
	return next, nil
}
