package throttle

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestSeriesBounded: 100k distinct hosts through the throttle leave per-host series only for the
// hosts the policy names, plus "other": the label set does not grow with the hosts crawled.
func TestSeriesBounded(t *testing.T) {
	thr := newThrottle(t, "defaults:\n  minDelay: 0s\n  robots: ignore\nrules:\n"+
		"  - hosts: [named.test]\n    maxConcurrency: 4\n  - hosts: [\"*.wild.test\"]\n    maxConcurrency: 4\n")
	reg := thr.metrics
	ctx := t.Context()
	for i := range 100_000 {
		host := fmt.Sprintf("h%d.example", i)
		switch i % 1000 {
		case 0:
			host = "named.test"
		case 1:
			host = fmt.Sprintf("x%d.wild.test", i) // a wildcard rule names no host
		}
		turn, err := thr.Admit(ctx, get("http://"+host+"/"))
		if err != nil {
			t.Fatal(err)
		}
		if err := turn.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		turn.Release()
	}
	for name, c := range map[string]prometheus.Collector{"wait": reg.wait, "inFlight": reg.inFlight, "backoffs": reg.backoffs} {
		ch := make(chan prometheus.Metric, 16)
		go func() { c.Collect(ch); close(ch) }()
		var hosts []string
		for m := range ch {
			var d dto.Metric
			if err := m.Write(&d); err != nil {
				t.Fatal(err)
			}
			for _, l := range d.GetLabel() {
				hosts = append(hosts, l.GetValue())
			}
		}
		for _, h := range hosts {
			if h != "named.test" && h != "other" {
				t.Errorf("%s: series for host %q", name, h)
			}
		}
		if len(hosts) > 2 {
			t.Errorf("%s: %d series after 100k hosts, want at most 2 (named.test, other)", name, len(hosts))
		}
	}
	if used, _ := thr.Hosts().Report(10); len(used) != 99_901 { // named.test 100 times
		t.Errorf("%d hosts reported used, want 99901", len(used))
	}
	if n := len(thr.Hosts().m); n != 0 {
		t.Errorf("%d hosts still counted after a report with nothing in flight", n)
	}
}
