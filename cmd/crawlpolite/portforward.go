package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"time"
)

var forwarding = regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) ->`)

// portForward runs `kubectl port-forward` to the chart's Redis service on a free local port and
// returns the local address once kubectl says it forwards, with a func that stops it. kubectl
// uses the caller's kubeconfig and context, as any plugin does.
func portForward(ctx context.Context, namespace, service string, stderr io.Writer) (string, func(), error) {
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	cmd := exec.CommandContext(pctx, "kubectl", "port-forward", "--namespace", namespace,
		"--address", "127.0.0.1", "svc/"+service, ":6379")
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return "", nil, err
	}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		cancel()
		return "", nil, fmt.Errorf("kubectl port-forward (pass --redis to connect directly): %w", err)
	}
	stop := func() { cancel(); _ = cmd.Wait() }
	port := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := forwarding.FindStringSubmatch(sc.Text()); m != nil {
				port <- m[1]
				break
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case p := <-port:
		return "127.0.0.1:" + p, stop, nil
	case <-time.After(15 * time.Second):
	case <-ctx.Done():
	}
	stop()
	return "", nil, fmt.Errorf("kubectl port-forward to svc/%s in %s did not start (pass --redis to connect directly)", service, namespace)
}
