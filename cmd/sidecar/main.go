// Command sidecar is crawlpolite's politeness proxy. A crawler sets HTTP_PROXY and HTTPS_PROXY to it,
// and every request it makes then takes a turn from a per-host semaphore shared through Redis, starts
// no sooner than the host's delay, and is refused when robots.txt disallows it.
//
// It is wiring only: flags and CRAWLPOLITE_* environment into Options, then run.
package main

import (
	"context"
	"fmt"
	"os"
)

// version is stamped by the image build (-ldflags -X main.version=...); logged at start.
var version = "dev"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "wait-ready" {
		// The legacy sidecar's postStart hook: the app containers start when this returns.
		if err := waitReady(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "crawlpolite-sidecar wait-ready:", err)
			os.Exit(1)
		}
		return
	}
	opts, err := parseOptions(os.Args[1:], os.LookupEnv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "crawlpolite-sidecar:", err)
		os.Exit(2)
	}
	ctx, stop := signalContext(context.Background())
	defer stop()
	if err := run(ctx, opts); err != nil {
		fmt.Fprintln(os.Stderr, "crawlpolite-sidecar:", err)
		os.Exit(1)
	}
}
