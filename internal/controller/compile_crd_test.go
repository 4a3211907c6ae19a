package controller

import (
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/crawlpolite/crawlpolite/api/v1alpha1"
	"github.com/crawlpolite/crawlpolite/internal/kubetest"
	"github.com/crawlpolite/crawlpolite/internal/policy"
)

// TestCRDGroupBy: the generated CRD, on a real kube-apiserver, accepts groupBy host, domain and ip
// and rejects anything else; what it stores compiles into the document with its group.
func TestCRDGroupBy(t *testing.T) {
	cfg := kubetest.Start(t, &envtest.Environment{CRDDirectoryPaths: []string{"../../config/crd/bases"}})
	c := kubetest.Client(t, cfg, v1alpha1.AddToScheme)
	ctx := t.Context()
	for _, g := range []string{"host", "domain", "ip", "site", "Domain"} {
		r := rule(2, "250ms", "*.example-blog.com")
		r.GroupBy = &g
		cp := &v1alpha1.CrawlPolicy{ObjectMeta: metav1.ObjectMeta{Name: "g-" + strings.ToLower(g)},
			Spec: v1alpha1.CrawlPolicySpec{Rules: []v1alpha1.Rule{r}}}
		err := c.Create(ctx, cp)
		valid := g == "host" || g == "domain" || g == "ip"
		switch {
		case valid && err != nil:
			t.Errorf("groupBy %q refused: %v", g, err)
		case !valid && !apierrors.IsInvalid(err):
			t.Errorf("groupBy %q: %v, want Invalid", g, err)
		case !valid && !strings.Contains(err.Error(), "groupBy"):
			t.Errorf("groupBy %q: the error does not name the field: %v", g, err)
		}
		if !valid {
			continue
		}
		var got v1alpha1.CrawlPolicy
		if err := c.Get(ctx, types.NamespacedName{Name: cp.Name}, &got); err != nil {
			t.Fatal(err)
		}
		out, err := compile(policy.Document{}, []v1alpha1.CrawlPolicy{got})
		if err != nil {
			t.Fatal(err)
		}
		p, err := policy.Parse(out.data)
		if err != nil {
			t.Fatal(err)
		}
		if l := p.For("www.example-blog.com", ""); l.GroupBy.String() != g {
			t.Errorf("stored groupBy %q compiles to %v", g, l.GroupBy)
		}
	}
}
