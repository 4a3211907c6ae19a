package inject

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Webhook is the typed admission defaulter for pods: controller-runtime computes the JSON patch
// from what Mutate changed. It is served at /mutate--v1-pod.
type Webhook struct {
	Config Config
}

var _ admission.Defaulter[*corev1.Pod] = (*Webhook)(nil)

// Default implements admission.Defaulter. A pod whose request names no namespace (created in the
// request's namespace) takes it from the request.
func (w *Webhook) Default(ctx context.Context, pod *corev1.Pod) error {
	if pod.Namespace == "" {
		if req, err := admission.RequestFromContext(ctx); err == nil {
			pod.Namespace = req.Namespace
		}
	}
	skipped, err := Mutate(pod, w.Config)
	switch {
	case err != nil:
		logf.FromContext(ctx).Info("pod denied", "namespace", pod.Namespace, "pod", podName(pod), "reason", err.Error())
	case skipped != "":
		logf.FromContext(ctx).V(1).Info("pod not injected", "namespace", pod.Namespace, "pod", podName(pod), "reason", skipped)
	}
	return err
}

// Setup registers the webhook with mgr.
func (w *Webhook) Setup(mgr ctrl.Manager) error {
	return ctrl.NewWebhookManagedBy(mgr, &corev1.Pod{}).WithDefaulter(w).Complete()
}

func podName(p *corev1.Pod) string {
	if p.Name != "" {
		return p.Name
	}
	return p.GenerateName + "*"
}
