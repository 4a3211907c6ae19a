package charttest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestChartNotes: what NOTES.txt tells users to run works. The admin port's per-host view is
// /debug/hosts (/state without ?host= prints {}); the cluster-wide view is the CLI's top, named
// with flags the built CLI accepts and, for the bundled Redis, the Service and Secret the chart
// renders (whatever the release is called); with redis.mode none there is no shared view to offer.
func TestChartNotes(t *testing.T) {
	plugin := filepath.Join(sharedDir(t), "kubectl-crawlpolite")
	if err := os.Symlink(builtCLI(t), plugin); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		top  string // how the notes' top command starts; "" for none
	}{
		{"bundled Redis", nil, "kubectl crawlpolite top"},
		{"bundled Redis, another name", []string{"--set", "fullnameOverride=polite"}, "kubectl crawlpolite top"},
		{"external Redis", []string{"--values", "testdata/values/redis-cluster.yaml"}, "crawlpolite top"},
		{"no Redis", []string{"--set", "redis.mode=none"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			notes := helmNotes(t, namespace, c.args...)
			if !strings.Contains(notes, "localhost:15081/debug/hosts") || strings.Contains(notes, "/state") {
				t.Errorf("the notes do not point at /debug/hosts alone:\n%s", notes)
			}
			var top []string
			for _, l := range strings.Split(notes, "\n") {
				if f := strings.Fields(l); strings.Contains(strings.Join(f, " "), "crawlpolite top") {
					top = f
				}
			}
			switch {
			case c.top == "" && top != nil:
				t.Fatalf("with no Redis the notes offer %q", strings.Join(top, " "))
			case c.top == "":
				return
			case !strings.HasPrefix(strings.Join(top, " "), c.top+" "):
				t.Fatalf("the notes do not say %q:\n%s", c.top, notes)
			}
			args := top[len(strings.Fields(c.top))-1:] // from "top" on
			for i, a := range args {
				args[i] = strings.Trim(a, "'")
			}
			// -h after the notes' flags: exit 0 only if every one of them parsed.
			out, err := exec.Command(plugin, append(args, "-h")...).CombinedOutput()
			if err != nil {
				t.Errorf("kubectl-crawlpolite %s -h: %v (a flag the CLI does not take?)\n%s", strings.Join(args, " "), err, out)
			}
			rendered, err := helmTemplate(t, namespace, c.args...)
			if err != nil {
				t.Fatal(err)
			}
			objs := decode(t, rendered)
			flag := func(name string) string {
				for i, a := range args {
					if a == name && i+1 < len(args) {
						return args[i+1]
					}
				}
				return ""
			}
			if c.top == "kubectl crawlpolite top" {
				if ns := flag("--namespace"); ns != namespace {
					t.Errorf("--namespace %q, want the release's %q", ns, namespace)
				}
				find(t, objs, "Service", flag("--redis-service"))
				find(t, objs, "Secret", flag("--redis-secret"))
			}
		})
	}
}

// helmNotes renders NOTES.txt as `helm install` prints it (a client-side dry run: no cluster).
func helmNotes(t *testing.T, namespace string, args ...string) string {
	t.Helper()
	helm := tool(t, "helm")
	cmd := exec.Command(helm, append([]string{"install", release, chartDir, "--namespace", namespace, "--dry-run=client"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm install --dry-run=client %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	_, notes, ok := strings.Cut(string(out), "\nNOTES:\n")
	if !ok {
		t.Fatalf("helm install --dry-run=client printed no NOTES:\n%s", out)
	}
	return notes
}
