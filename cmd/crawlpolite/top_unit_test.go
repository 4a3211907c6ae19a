package main

import (
	"testing"
	"time"

	"github.com/crawlpolite/crawlpolite/pkg/semaphore"
)

func TestSortRows(t *testing.T) {
	rows := []topRow{
		{Host: "b", InFlight: 1, Waiting: 9, Delay: "1s"},
		{Host: "a", InFlight: 2, Waiting: 0, Delay: "0s"},
		{Host: "c", InFlight: 1, Waiting: 3, Starting: 1, Delay: "5s"},
		{Host: "d", InFlight: 2, Waiting: 1, Delay: "200ms"},
	}
	for by, want := range map[string]string{"inflight": "dabc", "waiting": "bcda", "starting": "cdab", "delay": "cbda", "host": "abcd"} {
		sortRows(rows, by)
		var got string
		for _, r := range rows {
			got += r.Host
		}
		if got != want {
			t.Errorf("--sort %s: %s, want %s", by, got, want)
		}
	}
}

func TestExactHost(t *testing.T) {
	for in, want := range map[string]string{"": "", "*.example.com": "", "Example.COM": "example.com", "example.com:80": "example.com",
		"a.test:8443": "a.test:8443", "ex?mple.com": ""} {
		if got := exactHost(in); got != want {
			t.Errorf("exactHost(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRowBackoff: an active backoff names itself as the delay's source, with its end on the Redis
// clock, and the longer of the backoff and the delay.
func TestRowBackoff(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	r := rowOf(semaphore.HostState{Key: "a.test", Limit: 2, Delay: 200 * time.Millisecond, Backoff: 30 * time.Second},
		semaphore.Load{DelaySource: "robots", Robots: "ok"}, at)
	if r.DelaySource != "backoff" || r.BackoffUntil == nil || *r.BackoffUntil != "2026-12-01T10:00:30Z" || r.Delay != "30s" {
		t.Errorf("row %+v", r)
	}
	if r := rowOf(semaphore.HostState{Key: "b.test"}, semaphore.Load{}, at); r.DelaySource != "unknown" || r.Robots != "unknown" || r.BackoffUntil != nil {
		t.Errorf("row without a report: %+v", r)
	}
}
