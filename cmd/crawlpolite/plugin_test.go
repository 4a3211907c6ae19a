package main_test

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crawlpolite/crawlpolite/internal/redistest"
)

// TestKubectlPlugin: named kubectl-crawlpolite and given no --redis, the CLI port-forwards to the
// chart's Redis service with kubectl and reads the password from the chart's Secret. kubectl here
// is a stand-in script on PATH that records its arguments, answers the Secret and says it forwards
// to a real, password-protected redis-server.
func TestKubectlPlugin(t *testing.T) {
	const secret = "plugin-pa55"
	rs := redistest.Start(t, "--requirepass", secret)
	dir := t.TempDir()
	record := filepath.Join(dir, "kubectl.args")
	script := `#!/bin/sh
echo "$@" >> ` + record + `
case "$1" in
get) printf '%s' '` + base64.StdEncoding.EncodeToString([]byte(secret)) + `' ;;
port-forward) echo "Forwarding from 127.0.0.1:` + strings.TrimPrefix(rs.Addr, "127.0.0.1:") + ` -> 6379"; exec sleep 60 ;;
esac
`
	if err := os.WriteFile(filepath.Join(dir, "kubectl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	plugin := filepath.Join(dir, "kubectl-crawlpolite")
	if err := os.Symlink(cliBin, plugin); err != nil {
		t.Fatal(err)
	}
	cmd := []string{"hosts", "--namespace", "crawl", "-o", "json"}
	out, stderr, err := runWithPath(plugin, dir, cmd...)
	if err != nil || !strings.Contains(out, `"hosts": []`) {
		t.Fatalf("kubectl crawlpolite hosts: %v\n%s%s", err, out, stderr)
	}
	args, _ := os.ReadFile(record)
	for _, want := range []string{"get secret --namespace crawl crawlpolite-redis-auth -o jsonpath={.data.password}",
		"port-forward --namespace crawl --address 127.0.0.1 svc/crawlpolite-redis :6379"} {
		if !strings.Contains(string(args), want) {
			t.Errorf("kubectl was not asked %q; it was asked:\n%s", want, args)
		}
	}
	if strings.Contains(out+stderr, secret) {
		t.Errorf("the password was printed:\n%s%s", out, stderr)
	}
}
