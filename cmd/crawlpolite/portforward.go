package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strings"
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

// secretPassword reads the password key of a Secret with kubectl (the caller's credentials), for
// the chart's bundled Redis. It is decoded in memory and never printed.
func secretPassword(ctx context.Context, namespace, name string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "kubectl", "get", "secret", "--namespace", namespace, name,
		"-o", "jsonpath={.data.password}").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(ee.Stderr) > 0 {
			return "", fmt.Errorf("kubectl get secret: %s", firstLine(string(ee.Stderr)))
		}
		return "", fmt.Errorf("kubectl get secret: %w", err)
	}
	pw, err := base64.StdEncoding.DecodeString(string(out))
	if err != nil || len(pw) == 0 {
		return "", errors.New("no base64 password key")
	}
	return string(pw), nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
