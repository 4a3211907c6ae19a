package charttest

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestChartLint: helm lint --strict passes for every value set of the matrix.
func TestChartLint(t *testing.T) {
	helm := tool(t, "helm")
	sets, err := filepath.Glob("testdata/values/*.yaml")
	if err != nil || len(sets) == 0 {
		t.Fatalf("value sets: %v %v", sets, err)
	}
	for _, v := range sets {
		out, err := exec.Command(helm, "lint", "--strict", chartDir, "--namespace", "crawlpolite", "--values", v).CombinedOutput()
		if err != nil {
			t.Errorf("helm lint --strict --values %s: %v\n%s", v, err, out)
		}
	}
}

// TestSchemaRejects: values.schema.json refuses wrong types and out-of-range values before anything
// is rendered, with a message naming the value.
func TestSchemaRejects(t *testing.T) {
	for _, c := range []struct {
		name string
		set  string
		want []string
	}{
		{"string replicaCount", "replicaCount=abc", []string{"replicaCount", "string", "integer"}},
		{"zero maxConcurrency", "policy.defaults.maxConcurrency=0", []string{"policy/defaults/maxConcurrency", "minimum", "1"}},
		{"unknown redis mode", "redis.mode=foo", []string{"redis/mode", "'bundled', 'external', 'none'"}},
		{"bad minDelay", "policy.defaults.minDelay=5 seconds", []string{"policy/defaults/minDelay"}},
		{"unknown sidecar mode", "sidecar.mode=sometimes", []string{"sidecar/mode"}},
		{"webhook timeout over 30s", "webhook.timeoutSeconds=60", []string{"webhook/timeoutSeconds"}},
		{"zero replicaCount", "replicaCount=0", []string{"replicaCount"}},
		{"http redis url", "redis.url=http://redis:6379", []string{"redis/url"}},
		{"external without url", "redis.mode=external", []string{"redis/url"}},
		{"password in redis url", "redis.url=redis://:hunter2@redis:6379", []string{"redis/url"}}, // the password belongs in existingSecret
		{"misspelt key", "replicaCuont=3", []string{"replicaCuont"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := helmTemplate(t, "crawlpolite", "--set", c.set)
			if err == nil {
				t.Fatalf("--set %s: rendered; want a schema error", c.set)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("--set %s: error does not mention %q:\n%v", c.set, w, err)
				}
			}
		})
	}
}

// TestChartNamespace: the release's namespace is templated wherever config/ says crawlpolite-system:
// rendered into another, every namespaced object is there (the helm test hook's RBAC excepted: it
// lives where the dry-run pod is asked for) and the webhook excludes it.
func TestChartNamespace(t *testing.T) {
	sets, _ := filepath.Glob("testdata/values/*.yaml")
	for _, v := range sets {
		out, err := helmTemplate(t, "elsewhere", "--values", v)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(out), "crawlpolite-system") {
			t.Errorf("%s: rendered into namespace elsewhere, the chart still says crawlpolite-system", v)
		}
		for _, o := range decode(t, out) {
			hookRBAC := o.GetAnnotations()["helm.sh/hook"] == "test" && (o.GetKind() == "Role" || o.GetKind() == "RoleBinding")
			if ns := o.GetNamespace(); ns != "" && ns != "elsewhere" && !hookRBAC {
				t.Errorf("%s: %s/%s in namespace %q", v, o.GetKind(), o.GetName(), ns)
			}
		}
		mwc := find(t, decode(t, out), "MutatingWebhookConfiguration", release)
		if b, _ := json.Marshal(mwc.Object["webhooks"]); !strings.Contains(string(b), `"NotIn","values":["kube-system","kube-public","kube-node-lease","elsewhere"`) {
			t.Errorf("%s: the webhook does not exclude the release's namespace: %s", v, b)
		}
	}
}

// TestChartReadme: the chart's README is what helm-docs generates from values.yaml and
// README.md.gotmpl now (`make chart-docs` regenerates it).
func TestChartReadme(t *testing.T) {
	docs := tool(t, "helm-docs")
	cmd := exec.Command(docs, "--dry-run", "--chart-search-root", filepath.Dir(chartDir), "--log-level", "warning")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm-docs --dry-run: %v", err)
	}
	have, err := os.ReadFile(filepath.Join(chartDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(out)) != strings.TrimSpace(string(have)) {
		t.Errorf("charts/crawlpolite/README.md is stale: run `make chart-docs` and commit it.\ngenerated:\n%s", out)
	}
}

// TestChartArgsParse: for every value set, the manager's arguments as the chart renders them are
// flags the built webhook accepts, and its base policy a document it accepts: it gets past
// parsing (exit status 2 is a flag or validation error) and fails only at connecting to the
// (absent) cluster.
func TestChartArgsParse(t *testing.T) {
	_, webhook := built(t)
	sets, _ := filepath.Glob("testdata/values/*.yaml")
	for _, v := range sets {
		objs := render(t, "crawlpolite", filepath.Base(v))
		ctr := field(t, find(t, objs, "Deployment", release+"-webhook"), "spec", "template", "spec", "containers").([]any)[0].(map[string]any)
		dir := t.TempDir()
		base, _, _ := unstructured.NestedString(find(t, objs, "ConfigMap", release+"-base-policy").Object, "data", "policy.yaml")
		if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(base), 0o644); err != nil {
			t.Fatal(err)
		}
		args := append(localArgs(t, ctr, dir), "--namespace=crawlpolite", "--kubeconfig="+filepath.Join(dir, "absent"))
		out, err := exec.Command(webhook, args...).CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), "absent") {
			t.Errorf("%s: crawlpolite-webhook %s: %v (want exit 1 at the missing kubeconfig)\n%s", v, strings.Join(args, " "), err, out)
		}
	}
}
