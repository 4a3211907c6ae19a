package controller

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/crawlpolite/crawlpolite/api/v1alpha1"
	"github.com/crawlpolite/crawlpolite/internal/inject"
	"github.com/crawlpolite/crawlpolite/internal/policy"
)

// Reconciler keeps every namespace with injected pods supplied with the compiled policy. There is
// one document for the whole cluster, so every event leads to the same single reconcile request,
// which the work queue coalesces.
type Reconciler struct {
	Client client.Client
	// Base holds the defaults (and any rules) from Helm values or flags, ahead of every CrawlPolicy.
	Base policy.Document
	// ExcludedNamespaces receive no ConfigMap (no pod there is injected).
	ExcludedNamespaces []string
	// RedisSecret, when named, is the Secret (in the manager's namespace) whose password key is
	// copied, alone, into every namespace with injected pods as inject.RedisSecret.
	RedisSecret types.NamespacedName
	// CleanupGrace is how long a namespace without injected pods keeps what was delivered to it
	// (DefaultCleanupGrace when zero).
	CleanupGrace time.Duration
}

var everything = reconcile.Request{NamespacedName: types.NamespacedName{Name: "crawlpolite-policy"}}

const (
	conditionReady = "Ready"
	managedBy      = "app.kubernetes.io/managed-by"
	managedByValue = "crawlpolite"
)

// CacheOptions keeps the manager's cache to what the controller reads: injected pods, the policy
// ConfigMaps and the Redis Secret copies, and the source Secret (named redisSecret, in the
// manager's namespace), not every pod, ConfigMap and Secret of the cluster.
func CacheOptions(namespace, redisSecret string) cache.Options {
	secrets := cache.ByObject{Field: fields.OneTermEqualSelector("metadata.name", inject.RedisSecret)}
	if redisSecret != "" {
		secrets.Namespaces = map[string]cache.Config{
			namespace:           {FieldSelector: fields.OneTermEqualSelector("metadata.name", redisSecret)},
			cache.AllNamespaces: {FieldSelector: fields.OneTermEqualSelector("metadata.name", inject.RedisSecret)},
		}
		secrets.Field = nil
	}
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&corev1.Pod{}:       {Label: labels.SelectorFromSet(labels.Set{inject.InjectLabel: "enabled"})},
		&corev1.ConfigMap{}: {Field: fields.OneTermEqualSelector("metadata.name", inject.PolicyConfigMap)},
		&corev1.Secret{}:    secrets,
	}}
}

// Setup registers the controller with mgr.
func (r *Reconciler) Setup(mgr ctrl.Manager) error {
	all := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{everything}
	})
	// A pod's namespace never changes: of its updates only the one that finishes it matters.
	podsCome := predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		old, ok1 := e.ObjectOld.(*corev1.Pod)
		cur, ok2 := e.ObjectNew.(*corev1.Pod)
		return ok1 && ok2 && !finished(old) && finished(cur)
	}}
	return ctrl.NewControllerManagedBy(mgr).
		Named("crawlpolicy").
		Watches(&v1alpha1.CrawlPolicy{}, all, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Pod{}, all, builder.WithPredicates(podsCome)).
		Watches(&corev1.ConfigMap{}, all). // repairs edits and deletions
		Watches(&corev1.Secret{}, all).    // the source's changes, the copies' edits and deletions
		WithOptions(controllerOptions()).
		Complete(r)
}

// Reconcile compiles the policy, writes it where it is needed and reports in every CrawlPolicy.
func (r *Reconciler) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	log := logf.FromContext(ctx)
	var list v1alpha1.CrawlPolicyList
	if err := r.Client.List(ctx, &list); err != nil {
		return reconcile.Result{}, err
	}
	c, err := compile(r.Base, list.Items)
	if err != nil {
		return reconcile.Result{}, err
	}
	namespaces, err := r.namespaces(ctx)
	if err != nil {
		return reconcile.Result{}, err
	}
	var delivered int32
	var failed []error
	password, err := r.redisPassword(ctx)
	if err != nil {
		failed = append(failed, err)
	}
	for _, ns := range namespaces {
		err := r.deliver(ctx, ns, c.data)
		if err == nil && password != nil {
			err = r.deliverSecret(ctx, ns, password)
		}
		if err != nil {
			failed = append(failed, fmt.Errorf("namespace %s: %w", ns, err))
			continue
		}
		delivered++
	}
	// A missing password is not removed from pods that have one: nothing is cleaned up then.
	var requeue time.Duration
	if r.RedisSecret.Name == "" || password != nil {
		if requeue, err = r.cleanup(ctx, namespaces, password); err != nil {
			failed = append(failed, err)
		}
	}
	deliveryErr := errors.Join(failed...)
	for i := range list.Items {
		if err := r.report(ctx, &list.Items[i], c, delivered, deliveryErr); err != nil {
			failed = append(failed, err)
		}
	}
	if err := errors.Join(failed...); err != nil {
		log.Error(err, "policy not delivered everywhere; retrying")
		return reconcile.Result{}, err
	}
	return reconcile.Result{RequeueAfter: requeue}, nil
}

// namespaces are those with injected pods that may still run, sorted. A finished pod (a completed
// Job's, say) never starts again and needs nothing delivered: a namespace holding only those is
// cleaned up like an empty one.
func (r *Reconciler) namespaces(ctx context.Context) ([]string, error) {
	var pods corev1.PodList
	if err := r.Client.List(ctx, &pods, client.MatchingLabels{inject.InjectLabel: "enabled"}); err != nil {
		return nil, err
	}
	var out []string
	for i := range pods.Items {
		p := &pods.Items[i]
		if !finished(p) && !slices.Contains(out, p.Namespace) && !slices.Contains(r.ExcludedNamespaces, p.Namespace) {
			out = append(out, p.Namespace)
		}
	}
	slices.Sort(out)
	return out, nil
}

// finished says whether p has reached a terminal phase: its containers never run again.
func finished(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// deliver makes ns's policy ConfigMap hold data.
func (r *Reconciler) deliver(ctx context.Context, ns string, data []byte) error {
	var cm corev1.ConfigMap
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: inject.PolicyConfigMap}, &cm)
	switch {
	case apierrors.IsNotFound(err):
		cm = corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: inject.PolicyConfigMap, Labels: map[string]string{managedBy: managedByValue}},
			Data:       map[string]string{inject.PolicyKey: string(data)},
		}
		return r.Client.Create(ctx, &cm)
	case err != nil:
		return err
	case bytes.Equal([]byte(cm.Data[inject.PolicyKey]), data) && cm.Labels[managedBy] == managedByValue && cm.Annotations[orphanedSince] == "":
		return nil
	}
	delete(cm.Annotations, orphanedSince) // its namespace has injected pods again
	cm.Data = map[string]string{inject.PolicyKey: string(data)}
	if cm.Labels == nil {
		cm.Labels = map[string]string{}
	}
	cm.Labels[managedBy] = managedByValue
	return r.Client.Update(ctx, &cm)
}

// report writes one CrawlPolicy's status, when it changed.
func (r *Reconciler) report(ctx context.Context, cp *v1alpha1.CrawlPolicy, c compiled, delivered int32, deliveryErr error) error {
	st := cp.Status.DeepCopy()
	st.ObservedGeneration = cp.Generation
	st.Namespaces = delivered
	st.Conflicts = c.conflicts[cp.Name]
	cond := metav1.Condition{Type: conditionReady, Status: metav1.ConditionTrue, Reason: "Delivered", ObservedGeneration: cp.Generation,
		Message: fmt.Sprintf("part of the policy delivered to %d namespaces with injected pods", delivered)}
	switch {
	case c.invalid[cp.Name] != nil:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, "Invalid", "left out of the policy: "+c.invalid[cp.Name].Error()
	case deliveryErr != nil:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, "DeliveryFailed", deliveryErr.Error()
	}
	meta.SetStatusCondition(&st.Conditions, cond)
	// SetStatusCondition keeps a condition's transition time unless its status changes, so an
	// unchanged status compares equal.
	if equality.Semantic.DeepEqual(cp.Status, *st) {
		return nil
	}
	patch := client.MergeFrom(cp.DeepCopy())
	cp.Status = *st
	if err := r.Client.Status().Patch(ctx, cp, patch); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("status of %s: %w", cp.Name, err)
	}
	return nil
}
