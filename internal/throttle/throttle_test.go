package throttle

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/crawlpolite/crawlpolite/internal/policy"
	"github.com/crawlpolite/crawlpolite/internal/proxy"
	"github.com/crawlpolite/crawlpolite/pkg/semaphore"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name string
		in   string
		want time.Duration
	}{
		{"absent", "", 0},
		{"seconds", "120", 2 * time.Minute},
		{"zero", "0", 0},
		{"negative", "-5", 0},
		{"not a value", "soon", 0},
		{"date", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"date in the past", now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"seconds capped, no overflow", "99999999999999", (1 << 31) * time.Second},
		{"date capped alike", "Fri, 31 Dec 9999 23:59:59 GMT", (1 << 31) * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := retryAfter(c.in, now); got != c.want {
				t.Errorf("retryAfter(%q) = %v, want %v", c.in, got, c.want)
			}
		})
	}
}

// FuzzRetryAfter: any header value gives a delay in [0, maxRetryAfter], never a panic.
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"", "120", "-1", "Fri, 31 Dec 9999 23:59:59 GMT", "Sun, 06 Nov 1994 08:49:37 GMT",
		"Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994", "9223372036854775807", "1e9", " 5"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		if d := retryAfter(v, now); d < 0 || d > maxRetryAfter {
			t.Fatalf("retryAfter(%q) = %v", v, d)
		}
	})
}

// TestBreaker: once tripped it stays open for breakerOpen; then exactly one caller probes while the
// others keep skipping; a success closes it.
func TestBreaker(t *testing.T) {
	var b breaker
	if b.open() {
		t.Fatal("a new breaker is open")
	}
	b.trip()
	if !b.open() {
		t.Fatal("a tripped breaker is closed")
	}
	time.Sleep(breakerOpen + 50*time.Millisecond)
	var through atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if !b.open() {
				through.Add(1)
			}
		})
	}
	wg.Wait()
	if through.Load() != 1 {
		t.Fatalf("%d callers probed after the open period, want exactly 1", through.Load())
	}
	b.reset()
	if b.open() {
		t.Fatal("reset did not close the breaker")
	}
}

func newThrottle(t *testing.T, doc string) *Throttle {
	t.Helper()
	sem, err := semaphore.NewLocal(semaphore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sem.Close() })
	pol, err := policy.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	thr, err := New(sem, nil, nil, pol, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return thr
}

func get(url string) *http.Request { return httptest.NewRequest(http.MethodGet, url, nil) }

func refusal(t *testing.T, err error, status int) *proxy.Refusal {
	t.Helper()
	var r *proxy.Refusal
	if !errors.As(err, &r) || r.Status != status {
		t.Fatalf("want a %d refusal, got %v", status, err)
	}
	return r
}

// TestAdmit: a full host answers 429 with Retry-After once waitTimeout passes; a release admits the
// next; a bad host is a 400.
func TestAdmit(t *testing.T) {
	thr := newThrottle(t, "defaults:\n  maxConcurrency: 1\n  minDelay: 0s\n  robots: ignore\n  waitTimeout: 100ms\n")
	ctx := t.Context()
	held, err := thr.Admit(ctx, get("http://example.com/a"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = thr.Admit(ctx, get("http://EXAMPLE.com:80/b")) // the same host, normalized
	if r := refusal(t, err, http.StatusTooManyRequests); r.RetryAfter <= 0 {
		t.Errorf("429 without Retry-After: %+v", r)
	}
	if waited := time.Since(start); waited < 100*time.Millisecond {
		t.Errorf("refused after %v, before waitTimeout", waited)
	}
	held.Release()
	held.Release() // twice is harmless
	next, err := thr.Admit(ctx, get("http://example.com/c"))
	if err != nil {
		t.Fatalf("after a release: %v", err)
	}
	next.Release()
	bad := &http.Request{Method: http.MethodGet, URL: &url.URL{Scheme: "http", Host: "exa mple.com", Path: "/"}, Header: http.Header{}}
	_, err = thr.Admit(ctx, bad)
	_ = refusal(t, err, http.StatusBadRequest)
	if err := thr.WaitReleases(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestBackoffBeyondWait: after an origin's 429 with a Retry-After longer than waitTimeout, the next
// request is refused at once rather than sitting on a slot it cannot use in time.
func TestBackoffBeyondWait(t *testing.T) {
	thr := newThrottle(t, "defaults:\n  maxConcurrency: 4\n  minDelay: 0s\n  robots: ignore\n  waitTimeout: 1s\n")
	ctx := t.Context()
	turn, err := thr.Admit(ctx, get("http://busy.example/"))
	if err != nil {
		t.Fatal(err)
	}
	turn.Response(http.StatusTooManyRequests, http.Header{"Retry-After": {"30"}})
	turn.Release()
	// Without the check Admit would hand out the turn (its slot is free), to start in 30 s.
	_, err = thr.Admit(ctx, get("http://busy.example/again"))
	r := refusal(t, err, http.StatusTooManyRequests)
	if r.RetryAfter < 25*time.Second {
		t.Errorf("Retry-After %v, want about the origin's 30s", r.RetryAfter)
	}
	st, err := thr.State(ctx, "busy.example:80")
	if err != nil || st.Holders != 0 {
		t.Errorf("state after refusals: %+v %v (nothing may stay held)", st, err)
	}
}

// TestStateDefaultPorts: /state?host= names a host as requests to it are keyed, whichever default
// port it is given with.
func TestStateDefaultPorts(t *testing.T) {
	thr := newThrottle(t, "defaults:\n  maxConcurrency: 3\n  minDelay: 0s\n  robots: ignore\n")
	ctx := t.Context()
	turn, err := thr.Admit(ctx, get("http://ports.example/"))
	if err != nil {
		t.Fatal(err)
	}
	defer turn.Release()
	for _, authority := range []string{"ports.example", "ports.example:80", "ports.example:443", "PORTS.example"} {
		if st, err := thr.State(ctx, authority); err != nil || st.Holders != 1 {
			t.Errorf("State(%q) = %+v, %v; want the one holder", authority, st, err)
		}
	}
	if st, _ := thr.State(ctx, "ports.example:8080"); st.Holders != 0 {
		t.Errorf("another port shares the key: %+v", st)
	}
}

// TestLateness: every start is measured against its turn's start, and a request sent late moves
// the next turn's start to the delay after it was sent.
func TestLateness(t *testing.T) {
	thr := newThrottle(t, "defaults:\n  maxConcurrency: 1\n  minDelay: 50ms\n  robots: ignore\n")
	ctx := t.Context()
	var sent time.Time
	for i := range 3 {
		tu, err := thr.Admit(ctx, get("http://late.example/"))
		if err != nil {
			t.Fatal(err)
		}
		if start := tu.(*turn).lease.Start(); i > 0 && start.Before(sent.Add(50*time.Millisecond)) {
			t.Errorf("turn %d starts %v after the previous request was sent, delay 50ms", i, start.Sub(sent))
		}
		if err := tu.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Millisecond) // let go late
		sent = time.Now()
		tu.Sent()
		tu.Release()
	}
	var m dto.Metric
	if err := thr.metrics.late.Write(&m); err != nil {
		t.Fatal(err)
	}
	if n, sum := m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum(); n != 3 || sum < 0 {
		t.Errorf("lateness: %d samples, %.4fs in all; want 3, none negative", n, sum)
	}
}
