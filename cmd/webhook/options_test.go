package main

import (
	"os"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"
)

// TestManifestArgs: the manager Deployment in config/ passes flags this binary accepts.
func TestManifestArgs(t *testing.T) {
	for _, path := range []string{"../../config/manager/manager.yaml", "../../config/certmanager/manager_patch.yaml"} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, doc := range strings.Split(string(data), "\n---\n") {
			var d appsv1.Deployment
			if err := yaml.Unmarshal([]byte(doc), &d); err != nil || d.Kind != "Deployment" && !strings.Contains(doc, "kind: Deployment") {
				continue
			}
			for _, c := range d.Spec.Template.Spec.Containers {
				found = true
				if _, err := parseOptions(append(c.Args, "--namespace=crawlpolite-system")); err != nil {
					t.Errorf("%s: container %s: args %v: %v", path, c.Name, c.Args, err)
				}
			}
		}
		if !found {
			t.Errorf("%s: no Deployment container found", path)
		}
	}
	if _, err := parseOptions([]string{"--namespace=x", "--cert-mode=sometimes"}); err == nil {
		t.Error("a bad --cert-mode was accepted")
	}
	if _, err := parseOptions(nil); err == nil && os.Getenv("POD_NAMESPACE") == "" {
		t.Error("no namespace was accepted")
	}
}
