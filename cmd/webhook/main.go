// Command webhook is crawlpolite's manager: the mutating admission webhook that injects the
// politeness sidecar into pods labelled crawlpolite.io/inject=enabled, and the controller that
// compiles CrawlPolicies into the policy every sidecar reads.
//
// It is wiring only: flags into Options, then run.
package main

import (
	"fmt"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"
)

// version is stamped by the image build (-ldflags -X main.version=...); logged at start.
var version = "dev"

func main() {
	opts, err := parseOptions(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "crawlpolite-webhook:", err)
		os.Exit(2)
	}
	if err := run(ctrl.SetupSignalHandler(), opts); err != nil {
		fmt.Fprintln(os.Stderr, "crawlpolite-webhook:", err)
		os.Exit(1)
	}
}
