package main

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"
)

// cmdHosts lists the active hosts, most recently used first: one per line, or JSON.
func cmdHosts(ctx context.Context, c *common, args []string) error {
	fs := newFlags("hosts")
	c.flags(fs)
	limit := fs.Int("n", 1000, "hosts at most (the most recently used)")
	pattern := fs.String("host", "", "only hosts matching this pattern (*.example.com)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if *limit < 1 {
		return fmt.Errorf("%w: -n must be positive", errUsage)
	}
	rdb, err := c.redis(ctx)
	if err != nil {
		return err
	}
	defer c.done()
	keys, err := newTop(rdb, c.prefix).active.Keys(ctx, *limit)
	if err != nil {
		return err
	}
	type host struct {
		Host     string `json:"host"`
		LastUsed string `json:"lastUsed"`
	}
	out := []host{}
	for _, k := range keys {
		if ok, _ := path.Match(strings.ToLower(*pattern), k.Key); *pattern == "" || ok {
			out = append(out, host{k.Key, k.LastUsed.UTC().Format(time.RFC3339Nano)})
		}
	}
	if c.output == "json" {
		return writeJSON(c.stdout, map[string]any{"hosts": out})
	}
	for _, h := range out {
		fmt.Fprintln(c.stdout, h.Host)
	}
	return nil
}
