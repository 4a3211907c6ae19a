package charttest

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDashboard: with metrics.dashboard.enabled the chart ships the Grafana dashboard in a
// ConfigMap labelled for Grafana's dashboard sidecar; the dashboard is valid JSON, and its panels
// query exactly the series the sidecar registers (internal/proxy and internal/throttle metrics.go):
// none that does not exist, and every one of them somewhere.
func TestDashboard(t *testing.T) {
	cm := find(t, render(t, "crawlpolite", "monitoring.yaml"), "ConfigMap", release+"-dashboard")
	if cm.GetLabels()["grafana_dashboard"] != "1" || cm.GetAnnotations()["grafana_folder"] != "crawlpolite" {
		t.Errorf("labels %v, annotations %v: want grafana_dashboard=1 and the folder annotation", cm.GetLabels(), cm.GetAnnotations())
	}
	data, _ := cm.Object["data"].(map[string]any)
	text, _ := data["crawlpolite.json"].(string)
	var dash struct {
		UID    string
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal([]byte(text), &dash); err != nil || dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatalf("dashboard JSON: %v (%d panels)", err, len(dash.Panels))
	}
	registered := map[string]bool{}
	for _, f := range []string{"../../internal/proxy/metrics.go", "../../internal/throttle/metrics.go"} {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`Name:\s*"(crawlpolite_[a-z_]+)"`).FindAllStringSubmatch(string(src), -1) {
			registered[m[1]] = false
		}
	}
	name := regexp.MustCompile(`crawlpolite_[a-z_]+`)
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range name.FindAllString(tg.Expr, -1) {
				m = strings.TrimSuffix(m, "_bucket")
				if _, ok := registered[m]; !ok {
					t.Errorf("panel %q queries %s, which the sidecar does not register", p.Title, m)
				}
				registered[m] = true
			}
		}
	}
	var unused []string
	for m, used := range registered {
		if !used {
			unused = append(unused, m)
		}
	}
	slices.Sort(unused)
	if len(unused) > 0 {
		t.Errorf("series on no panel: %v", unused)
	}
}
