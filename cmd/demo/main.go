// Command demo shows the sidecar at work with nothing but Go: it starts a standalone sidecar (the
// in-process semaphore, no Redis), two local sites with robots.txt, and a crawler with many workers,
// prints a live per-host table, and ends with a summary of the limits the sites observed.
//
// Run it with `make demo`, which builds the sidecar first.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"
)

func main() {
	sidecar := flag.String("sidecar", "bin/crawlpolite-sidecar", "path of the built sidecar binary")
	duration := flag.Duration("duration", 8*time.Second, "how long the crawler runs")
	workers := flag.Int("workers", 16, "crawler workers")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *sidecar, *duration, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}
