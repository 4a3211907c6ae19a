package charttest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

const (
	chartDir = "../../charts/crawlpolite"
	release  = "crawlpolite"
)

// binDir holds the binaries built once for the whole package (see built).
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "charttest-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Readable by the unprivileged user the binaries run as (see runAsImageUser).
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// tool finds a binary hack/test-deps.sh installs.
func tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		msg := fmt.Sprintf("charttest: %s not on PATH; run `eval $(hack/test-deps.sh chart)` or `make test`", name)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

var build struct {
	once sync.Once
	err  error
}

// built returns the path of the sidecar and webhook binaries, built once per package run (with the
// CLI, see builtCLI) the way the Dockerfile builds them: CGO_ENABLED=0, -trimpath, stripped.
func built(t testing.TB) (sidecar, webhook string) {
	t.Helper()
	build.once.Do(func() {
		for _, p := range []struct{ pkg, out string }{
			{"../../cmd/sidecar", "crawlpolite-sidecar"}, {"../../cmd/webhook", "crawlpolite-webhook"},
			{"../../cmd/crawlpolite", "crawlpolite"},
		} {
			cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(binDir, p.out), p.pkg)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				build.err = fmt.Errorf("go build %s: %w\n%s", p.pkg, err, out)
				return
			}
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return filepath.Join(binDir, "crawlpolite-sidecar"), filepath.Join(binDir, "crawlpolite-webhook")
}

// builtCLI returns the path of the CLI (cmd/crawlpolite), built with the other binaries.
func builtCLI(t testing.TB) string {
	t.Helper()
	built(t)
	return filepath.Join(binDir, "crawlpolite")
}

// helmTemplate renders the chart (CRDs and test hooks included) with the value files and --set
// arguments given; it returns helm's error output on failure.
func helmTemplate(t testing.TB, namespace string, args ...string) ([]byte, error) {
	t.Helper()
	helm := tool(t, "helm")
	cmd := exec.Command(helm, append([]string{"template", release, chartDir, "--namespace", namespace, "--include-crds"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("helm template %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

// render renders a value file of testdata/values and decodes the objects.
func render(t testing.TB, namespace, values string) []*unstructured.Unstructured {
	t.Helper()
	out, err := helmTemplate(t, namespace, "--values", filepath.Join("testdata/values", values))
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, out)
}

// decode splits a multi-document YAML stream into objects, skipping empty documents.
func decode(t testing.TB, data []byte) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	d := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var m map[string]any
		if err := d.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objs
			}
			t.Fatalf("decode rendered manifests: %v", err)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
}

// find returns the object of that kind and name, failing the test when there is none.
func find(t testing.TB, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s/%s rendered", kind, name)
	return nil
}
