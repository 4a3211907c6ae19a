// Command crawlpolite observes the politeness every sidecar sharing a Redis enforces: the busiest
// hosts right now (top), why a request would wait or be refused (explain), the active hosts (hosts)
// and the cached robots.txt of a host (robots). Installed as kubectl-crawlpolite it is also a
// kubectl plugin (kubectl crawlpolite top), which port-forwards to the chart's Redis when no
// --redis is given.
package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, filepath.Base(os.Args[0]), os.Args[1:], env{lookup: os.LookupEnv, stdout: os.Stdout, stderr: os.Stderr}))
}
