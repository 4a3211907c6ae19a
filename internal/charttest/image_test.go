package charttest

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crawlpolite/crawlpolite/internal/inject"
)

// TestImageBinaries: what the image holds. No container engine runs here, so the binaries are built
// as the Dockerfile builds them, and checked: static (no program interpreter, no dynamic section),
// built with CGO_ENABLED=0 and -trimpath (go version -m), and the sidecar starts with an empty
// environment from a read-only directory as the image's user, serving /healthz on its admin port and
// exiting 0 on SIGTERM; the CLI the same way prints its usage (exit 0) and, with no Redis named,
// says so (exit 2). (The webhook binary starts the same way in TestChartOnAPIServer.)
func TestImageBinaries(t *testing.T) {
	dockerfile, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "USER 65532:65532", "sidecar:" + filepath.Base(inject.SidecarBinary),
		"webhook:crawlpolite-webhook", "crawlpolite:crawlpolite", "COPY --from=build /out/ " + filepath.Dir(inject.SidecarBinary) + "/"} {
		if !strings.Contains(string(dockerfile), want) {
			t.Errorf("Dockerfile does not say %q: the binaries tested here are not the image's", want)
		}
	}

	sidecar, webhook := built(t)
	cli := builtCLI(t)
	for _, bin := range []string{sidecar, webhook, cli} {
		name := filepath.Base(bin)
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("%s has a %v program header: not static", name, p.Type)
			}
		}
		if f.Section(".dynamic") != nil || f.Section(".interp") != nil {
			t.Errorf("%s has a dynamic section", name)
		}
		if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
			t.Errorf("%s imports %v", name, libs)
		}
		_ = f.Close()

		out, err := exec.Command("go", "version", "-m", bin).Output()
		if err != nil {
			t.Fatalf("go version -m %s: %v", name, err)
		}
		for _, want := range []string{"build\tCGO_ENABLED=0", "build\t-trimpath=true"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("go version -m %s lacks %q:\n%s", name, want, out)
			}
		}
	}

	admin := freePort(t)
	p := start(t, sidecar, fmt.Sprintf("--listen=127.0.0.1:%d", freePort(t)), fmt.Sprintf("--admin-listen=127.0.0.1:%d", admin))
	p.waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", admin))
	if err := p.stop(); err != nil {
		t.Errorf("sidecar on SIGTERM: %v\n%s", err, p.output)
	}

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--help"}, 0, "usage: crawlpolite COMMAND"},
		{[]string{"top", "-h"}, 0, "-redis"},
		{[]string{"hosts"}, 2, "no Redis: pass --redis URL or set CRAWLPOLITE_REDIS"},
	} {
		p := start(t, cli, c.args...)
		select {
		case <-p.exited:
		case <-time.After(30 * time.Second):
			t.Fatalf("crawlpolite %s: still running after 30s", strings.Join(c.args, " "))
		}
		if code := p.cmd.ProcessState.ExitCode(); code != c.code || !strings.Contains(p.output.String(), c.want) {
			t.Errorf("crawlpolite %s: exit %d (want %d), output lacks %q:\n%s", strings.Join(c.args, " "), code, c.code, c.want, p.output)
		}
	}
}
