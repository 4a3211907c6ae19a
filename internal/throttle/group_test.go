package throttle

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/crawlpolite/crawlpolite/internal/policy"
	"github.com/crawlpolite/crawlpolite/internal/redistest"
	"github.com/crawlpolite/crawlpolite/pkg/semaphore"

	"github.com/crawlpolite/crawlpolite/internal/proxy"
)

const groupDoc = `defaults:
  maxConcurrency: 1
  minDelay: 0s
  robots: ignore
  waitTimeout: 100ms
rules:
  - hosts: ["*.example.co.uk"]
    groupBy: domain
  - hosts: ["*.shared.test", "*.unrelated.test"]
    groupBy: ip
`

// TestGroups: hosts of one group share one budget and one key; others keep their own; a group by
// IP pins the request to the address it was grouped by; host groups never resolve.
func TestGroups(t *testing.T) {
	thr := newThrottle(t, groupDoc)
	var lookups atomic.Int32
	thr.UseResolver(func(_ context.Context, host string, _ int) (netip.Addr, error) {
		lookups.Add(1)
		switch host {
		case "a.shared.test", "b.unrelated.test":
			return netip.MustParseAddr("192.0.2.1"), nil
		case "c.shared.test":
			return netip.MustParseAddr("192.0.2.2"), nil
		}
		return netip.Addr{}, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	})
	ctx := t.Context()
	cases := []struct {
		name, first, second string
		shared              bool
		key                 string
	}{
		{"one domain", "http://a.b.example.co.uk/", "https://c.example.co.uk/", true, "domain:example.co.uk"},
		{"two domains", "http://a.example.co.uk/", "http://a.other.co.uk/", false, "domain:example.co.uk"},
		{"one address", "http://a.shared.test/", "http://b.unrelated.test:8080/", true, "ip:192.0.2.1"},
		{"two addresses", "http://a.shared.test/", "http://c.shared.test/", false, "ip:192.0.2.1"},
		{"hosts", "http://one.example/", "http://two.example/", false, "one.example"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			held, err := thr.Admit(ctx, get(c.first))
			if err != nil {
				t.Fatal(err)
			}
			defer held.Release()
			if key, err := thr.Key(ctx, get(c.first).URL.Host); err != nil || key != c.key {
				t.Errorf("Key = %q %v, want %q", key, err, c.key)
			}
			second, err := thr.Admit(ctx, get(c.second))
			switch {
			case c.shared:
				_ = refusal(t, err, http.StatusTooManyRequests) // the group's one slot is held
			case err != nil:
				t.Errorf("the second host has its own budget, got %v", err)
			default:
				second.Release()
			}
			if st, err := thr.State(ctx, get(c.second).URL.Host); err != nil || (st.Holders == 1) != c.shared {
				t.Errorf("State(second) = %+v %v, shared %v", st, err, c.shared)
			}
		})
	}
	turn, err := thr.Admit(ctx, get("http://b.unrelated.test/"))
	if err != nil {
		t.Fatal(err)
	}
	if a := turn.(proxy.DialPin).DialAddr(); a != netip.MustParseAddr("192.0.2.1") {
		t.Errorf("groupBy ip pins %v, want 192.0.2.1", a)
	}
	turn.Release()
	n := lookups.Load()
	turn, err = thr.Admit(ctx, get("http://a.example.co.uk/"))
	if err != nil {
		t.Fatal(err)
	}
	if a := turn.(proxy.DialPin).DialAddr(); a.IsValid() {
		t.Errorf("groupBy domain pins %v", a)
	}
	turn.Release()
	if turn, err = thr.Admit(ctx, get("http://one.example/")); err != nil {
		t.Fatal(err)
	}
	turn.Release()
	if lookups.Load() != n {
		t.Error("groupBy host or domain resolved the name")
	}
	_, err = thr.Admit(ctx, get("http://gone.shared.test/"))
	if r := refusal(t, err, http.StatusBadGateway); r.Type != "dns_error" {
		t.Errorf("unresolvable name under groupBy ip: %+v", r)
	}
}

// TestSeriesGroups: a group's series is named by its key when the policy names its domain or host,
// and "other" otherwise, so a rule grouping a whole suffix by domain adds no series per domain.
func TestSeriesGroups(t *testing.T) {
	thr := newThrottle(t, "defaults:\n  minDelay: 0s\n  robots: ignore\nrules:\n"+
		"  - hosts: [\"*.blog.test\"]\n    groupBy: domain\n  - hosts: [\"*.co.uk\"]\n    groupBy: domain\n"+
		"  - hosts: [named.test]\n    groupBy: ip\n")
	thr.UseResolver(func(context.Context, string, int) (netip.Addr, error) { return netip.MustParseAddr("192.0.2.9"), nil })
	ctx := t.Context()
	for i := range 1000 {
		for _, h := range []string{fmt.Sprintf("h%d.blog.test", i), fmt.Sprintf("www.site%d.co.uk", i), "named.test"} {
			turn, err := thr.Admit(ctx, get("http://"+h+"/"))
			if err != nil {
				t.Fatal(err)
			}
			if err := turn.Wait(ctx); err != nil {
				t.Fatal(err)
			}
			turn.Release()
		}
	}
	ch := make(chan prometheus.Metric, 16)
	go func() { thr.metrics.wait.Collect(ch); close(ch) }()
	var labels []string
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatal(err)
		}
		for _, l := range d.GetLabel() {
			labels = append(labels, l.GetValue())
		}
	}
	slices.Sort(labels)
	if want := []string{"domain:blog.test", "ip:192.0.2.9", "other"}; !slices.Equal(labels, want) {
		t.Errorf("wait series %v, want %v", labels, want)
	}
}

// TestGroupBackoffPerHost: a 429 from one host of a group backs that host off (its next request
// waits the Retry-After, or is answered 429 when that is beyond its waitTimeout) while the other
// hosts of the group go on at once under the group's budget.
func TestGroupBackoffPerHost(t *testing.T) {
	thr := newThrottle(t, "defaults:\n  maxConcurrency: 1\n  minDelay: 0s\n  robots: ignore\n  waitTimeout: 3s\nrules:\n"+
		"  - hosts: [\"*.example.co.uk\"]\n    groupBy: domain\n  - hosts: [\"*.quick.co.uk\"]\n    groupBy: domain\n    waitTimeout: 200ms\n")
	ctx := t.Context()
	admit := func(u string) (time.Duration, error) {
		t.Helper()
		began := time.Now()
		turn, err := thr.Admit(ctx, get(u))
		if err != nil {
			return time.Since(began), err
		}
		if err := turn.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		turn.Sent()
		turn.Release()
		return time.Since(began), nil
	}
	turn, err := thr.Admit(ctx, get("http://a.example.co.uk/"))
	if err != nil {
		t.Fatal(err)
	}
	turn.Response(http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}})
	turn.Release()
	// While it lasts, State shows the host's own backoff (and the group's numbers).
	if st, err := thr.State(ctx, "a.example.co.uk"); err != nil || st.BackoffLevel != 1 || st.Backoff <= 0 {
		t.Errorf("State of the backed-off host: %+v %v, want its own backoff (level 1)", st, err)
	}
	if d, err := admit("http://b.example.co.uk/"); err != nil || d > 700*time.Millisecond { // not the 1s backoff
		t.Errorf("another host of the group waited %v (%v): the backoff is a.example.co.uk's", d, err)
	}
	if d, err := admit("http://a.example.co.uk/again"); err != nil || d < 800*time.Millisecond {
		t.Errorf("the backed-off host went after %v (%v), want about its Retry-After 1s", d, err)
	}
	if st, err := thr.State(ctx, "b.example.co.uk"); err != nil || st.Backoff != 0 {
		t.Errorf("the group's gate was backed off: %+v %v", st, err)
	}
	turn, err = thr.Admit(ctx, get("http://a.quick.co.uk/"))
	if err != nil {
		t.Fatal(err)
	}
	turn.Response(http.StatusServiceUnavailable, http.Header{"Retry-After": {"30"}})
	turn.Release()
	_, err = admit("http://a.quick.co.uk/again")
	if r := refusal(t, err, http.StatusTooManyRequests); r.RetryAfter < 25*time.Second {
		t.Errorf("Retry-After %v, want about the origin's 30s", r.RetryAfter)
	}
	if _, err := admit("http://b.quick.co.uk/"); err != nil {
		t.Errorf("another host of the group: %v", err)
	}
}

// TestGroupBackoffEscalatesRedis: on Redis, a grouped host's exponential backoff (429s without
// Retry-After) doubles when the next 429 follows the backoff's end, as a host's own does: the host's
// key outlives its backoff by a second or two.
func TestGroupBackoffEscalatesRedis(t *testing.T) {
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = c.Close() })
	sem, err := semaphore.NewRedis(c, semaphore.Options{Prefix: "escalate", BackoffBase: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sem.Close() })
	pol, err := policy.Parse([]byte("defaults:\n  minDelay: 0s\n  robots: ignore\n  waitTimeout: 5s\nrules:\n  - hosts: [\"*.example.co.uk\"]\n    groupBy: domain\n"))
	if err != nil {
		t.Fatal(err)
	}
	thr, err := New(sem, nil, nil, pol, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for i, want := range []time.Duration{0, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond} {
		began := time.Now()
		turn, err := thr.Admit(ctx, get("http://a.example.co.uk/"))
		if err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(began); waited < want-20*time.Millisecond || waited > want+400*time.Millisecond {
			t.Errorf("request %d waited %v, want about %v (backoff level %d)", i, waited, want, i)
		}
		turn.Response(http.StatusServiceUnavailable, http.Header{})
		turn.Release()
	}
}
