package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// bins are the programs built once for the suite: the sidecar and webhook as the image holds them
// (static, no race detector: the suite measures them), and the test crawler.
var bins = map[string]string{}

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	dir, err := os.MkdirTemp("", "crawlpolite-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for name, pkg := range map[string]string{
		"crawlpolite-sidecar": "../cmd/sidecar",
		"crawlpolite-webhook": "../cmd/webhook",
		"crawler":             "./crawler",
	} {
		bins[name] = filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-trimpath", "-o", bins[name], pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n", pkg, err)
			os.Exit(1)
		}
	}
	// E2E_SIDECAR runs the suite against another sidecar build (a deliberately broken one, say, to
	// see each scenario fail).
	if p := os.Getenv("E2E_SIDECAR"); p != "" {
		bins["crawlpolite-sidecar"] = p
	}
	code := m.Run()
	if err := writeReport(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e report:", err)
		code = 1
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// full is the long form (make e2e).
func full() bool { return os.Getenv("E2E_FULL") != "" }
