package main

import (
	"flag"
	"fmt"
	"net/http"
	"time"
)

// waitReady polls the admin /readyz until it answers 200, or the timeout passes.
func waitReady(args []string) error {
	fs := flag.NewFlagSet("wait-ready", flag.ContinueOnError)
	admin := fs.String("admin-listen", "127.0.0.1:15081", "the sidecar's admin address")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long to wait")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(*timeout)
	for {
		resp, err := c.Get("http://" + *admin + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("readyz answered %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %w", *timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
