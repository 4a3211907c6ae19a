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

func main() {
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
