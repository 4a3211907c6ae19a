package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/crawlpolite/crawlpolite/internal/inject"
)

// TestWebhookBenchmark reports the latency of one admission review (p50, p99): answered by the
// webhook handler over HTTPS (decode, mutate, JSON patch, encode), and as a client sees it, pod
// creation through the real API server with and without the webhook in the path. A benchmark, run
// by `make bench` (CRAWLPOLITE_BENCH=1), not a test.
func TestWebhookBenchmark(t *testing.T) {
	if os.Getenv("CRAWLPOLITE_BENCH") == "" {
		t.Skip("a benchmark: run with CRAWLPOLITE_BENCH=1 (make bench)")
	}
	const n = 2000
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	cfg := inject.DefaultConfig()
	cfg.NoProxy = []string{"10.96.0.0/12"}
	srv := httptest.NewTLSServer(admission.WithDefaulter(scheme, &inject.Webhook{Config: cfg}))
	defer srv.Close()
	p := pod("crawl", "crawler", true, nil)
	p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "worker", Image: "crawler:1"})
	raw, _ := json.Marshal(p)
	review := func(i int) []byte {
		b, _ := json.Marshal(admissionv1.AdmissionReview{
			TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
			Request: &admissionv1.AdmissionRequest{UID: types.UID(fmt.Sprint(i)), Operation: admissionv1.Create, Namespace: "crawl",
				Kind:     metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
				Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
				Object:   runtime.RawExtension{Raw: raw}},
		})
		return b
	}
	c := srv.Client()
	var direct []time.Duration
	for i := range n + 100 {
		body := review(i)
		start := time.Now()
		resp, err := c.Post(srv.URL, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var out admissionv1.AdmissionReview
		err = json.NewDecoder(resp.Body).Decode(&out)
		_ = resp.Body.Close()
		took := time.Since(start)
		if err != nil || out.Response == nil || !out.Response.Allowed || len(out.Response.Patch) == 0 {
			t.Fatalf("review %d: %v %+v", i, err, out.Response)
		}
		if i >= 100 { // after warm-up
			direct = append(direct, took)
		}
	}

	k := startCluster(t)
	ctx := t.Context()
	create := func(labelled bool, count int) []time.Duration {
		var d []time.Duration
		for i := range count + 20 {
			pd := pod("crawl", fmt.Sprintf("p-%v-%d", labelled, i), labelled, nil)
			start := time.Now()
			if err := k.c.Create(ctx, pd); err != nil {
				t.Fatal(err)
			}
			if i >= 20 {
				d = append(d, time.Since(start))
			}
		}
		return d
	}
	const m = 300
	var with, without []time.Duration
	for range 3 { // interleaved, so a slow spell of the machine does not favour one
		without = append(without, create(false, m/3)...)
		with = append(with, create(true, m/3)...)
		_ = k.c.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace("crawl"))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nwebhook benchmark: one admission review of a 2-container pod\n")
	fmt.Fprintf(&b, "%-46s %9s %9s %6s\n", "", "p50", "p99", "n")
	row := func(name string, d []time.Duration) {
		fmt.Fprintf(&b, "%-46s %9v %9v %6d\n", name, pct(d, 50), pct(d, 99), len(d))
	}
	row("handler over HTTPS (keep-alive)", direct)
	row("pod create via API server, unlabelled", without)
	row("pod create via API server, labelled (webhook)", with)
	fmt.Fprintf(&b, "added by the webhook to a pod create: p50 %v\n", pct(with, 50)-pct(without, 50))
	t.Log(b.String())
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)].Round(time.Microsecond)
}
