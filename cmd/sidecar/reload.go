package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/crawlpolite/crawlpolite/internal/policy"
	"github.com/crawlpolite/crawlpolite/internal/throttle"
)

// loadPolicy reads and parses the policy file; the built-in defaults when path is empty.
func loadPolicy(path string) (*policy.Policy, []byte, error) {
	if path == "" {
		p, err := policy.Parse(nil)
		return p, nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("--policy-file: %w", err)
	}
	p, err := policy.Parse(data)
	if err != nil {
		return nil, nil, fmt.Errorf("--policy-file %s: %w", path, err)
	}
	return p, data, nil
}

// watchPolicy re-reads path every interval and applies a changed, valid policy. A bad one is logged
// once and the last good policy stays. Polling, rather than inotify, follows the symlink swap by
// which the kubelet updates a mounted ConfigMap.
func watchPolicy(ctx context.Context, path string, every time.Duration, last []byte, thr *throttle.Throttle, log *slog.Logger) {
	if path == "" {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		data, err := os.ReadFile(path)
		if err != nil || bytes.Equal(data, last) {
			continue
		}
		last = data
		p, err := policy.Parse(data)
		if err != nil {
			log.Error("policy reload failed; keeping the last good policy", "file", path, "error", err.Error())
			continue
		}
		thr.SetPolicy(p)
		log.Info("policy reloaded", "file", path)
	}
}
