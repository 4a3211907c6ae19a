package charttest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
		set  string
		want []string
	}{
		{"replicaCount=abc", []string{"replicaCount", "string", "integer"}},
		{"policy.defaults.maxConcurrency=0", []string{"policy/defaults/maxConcurrency", "minimum", "1"}},
		{"redis.mode=foo", []string{"redis/mode", "'bundled', 'external', 'none'"}},
		{"policy.defaults.minDelay=5 seconds", []string{"policy/defaults/minDelay"}},
		{"sidecar.mode=sometimes", []string{"sidecar/mode"}},
		{"webhook.timeoutSeconds=60", []string{"webhook/timeoutSeconds"}},
		{"replicaCount=0", []string{"replicaCount"}},
		{"redis.url=http://redis:6379", []string{"redis/url"}},
		{"redis.mode=external", []string{"redis/url"}},
		{"replicaCuont=3", []string{"replicaCuont"}},
	} {
		_, err := helmTemplate(t, "crawlpolite", "--set", c.set)
		if err == nil {
			t.Errorf("--set %s: rendered; want a schema error", c.set)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("--set %s: error does not mention %q:\n%v", c.set, w, err)
			}
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
