package main

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/crawlpolite/crawlpolite/internal/inject"
	"github.com/crawlpolite/crawlpolite/internal/kubetest"
)

// TestCleanupWaitsForGrace: what was delivered to a namespace stays until the grace period after
// its mark ends, and goes then, both when its last injected pod is deleted (crawl) and when its
// injected pods have only finished, Succeeded or Failed like a completed Job's, and still exist
// (done). A namespace with a finished pod and a running one (mixed) keeps its delivery.
func TestCleanupWaitsForGrace(t *testing.T) {
	const grace = 4 * time.Second
	k := startCluster(t, "--redis-password-secret=redis-auth", "--cleanup-grace="+grace.String())
	kubetest.Namespaces(t, k.c, "done", "mixed")
	ctx := t.Context()
	if err := k.c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "crawlpolite-system", Name: "redis-auth"},
		Data: map[string][]byte{"password": []byte("s3cret")}}); err != nil {
		t.Fatal(err)
	}
	pods := map[string][]string{"crawl": {"crawler"}, "done": {"job-ok", "job-failed"}, "mixed": {"job-ok", "crawler"}}
	for ns, names := range pods {
		for _, name := range names {
			if err := k.c.Create(ctx, pod(ns, name, true, nil)); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "delivery to "+ns, func() bool { s := deliveredTo(ctx, t, k.c, ns); return s.configMap && s.secret })
	}

	if err := k.c.Delete(ctx, pod("crawl", "crawler", true, nil)); err != nil {
		t.Fatal(err)
	}
	finish(ctx, t, k.c, "done", "job-ok", corev1.PodSucceeded)
	finish(ctx, t, k.c, "done", "job-failed", corev1.PodFailed)
	finish(ctx, t, k.c, "mixed", "job-ok", corev1.PodSucceeded)

	// Both are marked by the same reconcile, so they are watched together.
	ends := map[string]time.Time{}
	for _, ns := range []string{"crawl", "done"} {
		waitFor(t, "namespace "+ns+" marked orphaned", func() bool {
			s := deliveredTo(ctx, t, k.c, ns)
			if !s.orphanedSince.IsZero() {
				ends[ns] = s.orphanedSince.Add(grace)
			}
			return !s.orphanedSince.IsZero() || !s.configMap
		})
		if ends[ns].IsZero() {
			t.Fatalf("namespace %s lost its delivery without being marked first", ns)
		}
	}
	// Lower bound: every look that returned before the grace ended found both objects.
	for looked := true; looked; time.Sleep(50 * time.Millisecond) {
		looked = false
		for ns, end := range ends {
			if time.Until(end) < 100*time.Millisecond {
				continue
			}
			looked = true
			s := deliveredTo(ctx, t, k.c, ns)
			if left := time.Until(end); left > 0 && (!s.configMap || !s.secret) {
				t.Fatalf("namespace %s: %v before the grace period ended (grace %s): configmap %v, secret %v",
					ns, left.Round(time.Millisecond), grace, s.configMap, s.secret)
			}
		}
	}
	// Upper bound: gone once it has ended.
	for ns, end := range ends {
		waitFor(t, "namespace "+ns+" cleaned up", func() bool { s := deliveredTo(ctx, t, k.c, ns); return !s.configMap && !s.secret })
		if late := time.Since(end); late > 10*time.Second {
			t.Errorf("namespace %s cleaned up %s after the grace period ended", ns, late.Round(time.Millisecond))
		}
	}
	if s := deliveredTo(ctx, t, k.c, "mixed"); !s.configMap || !s.secret || !s.orphanedSince.IsZero() {
		t.Errorf("namespace mixed still has a running injected pod but: %+v", s)
	}
}

type delivery struct {
	configMap, secret bool
	orphanedSince     time.Time // zero when not marked
}

func deliveredTo(ctx context.Context, t *testing.T, c client.Client, ns string) delivery {
	t.Helper()
	var d delivery
	var cm corev1.ConfigMap
	switch err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: inject.PolicyConfigMap}, &cm); {
	case err == nil:
		d.configMap = true
		if v := cm.Annotations["crawlpolite.io/orphaned-since"]; v != "" {
			since, err := time.Parse(time.RFC3339, v)
			if err != nil {
				t.Fatalf("namespace %s: orphaned-since %q: %v", ns, v, err)
			}
			d.orphanedSince = since
		}
	case !apierrors.IsNotFound(err):
		t.Fatal(err)
	}
	var s corev1.Secret
	switch err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: inject.RedisSecret}, &s); {
	case err == nil:
		d.secret = true
	case !apierrors.IsNotFound(err):
		t.Fatal(err)
	}
	return d
}

// finish sets a pod's phase as the kubelet would when its containers are done for good.
func finish(ctx context.Context, t *testing.T, c client.Client, ns, name string, phase corev1.PodPhase) {
	t.Helper()
	var p corev1.Pod
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &p); err != nil {
		t.Fatal(err)
	}
	p.Status.Phase = phase
	if err := c.Status().Update(ctx, &p); err != nil {
		t.Fatalf("pod %s/%s to %s: %v", ns, name, phase, err)
	}
}
