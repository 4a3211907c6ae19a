package semaphore_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crawlpolite/crawlpolite/pkg/semaphore"
)

// TestConformance runs every case against the in-process backend, a real redis-server and a real
// six-node Redis Cluster. The cases marked "processes" use several OS processes and need Redis.
func TestConformance(t *testing.T) {
	cases := []struct {
		name      string
		processes bool
		run       func(*testing.T, backend)
	}{
		{"limit and delay under stress (goroutines)", false, testStressGoroutines},
		{"limit and delay under stress (processes)", true, testStressProcesses},
		{"FIFO within a process", false, testFIFOGoroutines},
		{"FIFO across processes", true, testFIFOProcesses},
		{"mixed limits: strictest present wins", false, testMixedLimits},
		{"cancelled waiter leaves the queue", false, testCancelLeavesQueue},
		{"queue full", false, testQueueFull},
		{"retried script neither double-grants nor double-releases", false, testRetriedScripts},
		{"stale release after expiry frees nothing", false, testStaleRelease},
		{"lease refreshed while held", false, testLeaseRefresh},
		{"backoff pushes the start for everyone", false, testBackoff},
		{"a late start pushes the gate (release and refresh)", false, testLateStart},
		{"idle key leaves nothing behind", false, testIdleKeyVanishes},
		{"odd keys", false, testOddKeys},
		{"holder killed with SIGKILL frees its slot within its lease", true, testKilledHolder},
		{"waiter killed with SIGKILL stops blocking within its TTL", true, testKilledWaiter},
		{"client never sends a time", true, testNoClientTimestamps},
	}
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			for _, c := range cases {
				if c.processes && !b.shared() {
					continue
				}
				t.Run(c.name, func(t *testing.T) { c.run(t, b) })
			}
		})
	}
}

var stressKeys = []keySpec{
	{"one.example", semaphore.Limits{Concurrency: 1, Delay: 0}},
	{"three.example", semaphore.Limits{Concurrency: 3, Delay: 20 * time.Millisecond}},
	{"five.example", semaphore.Limits{Concurrency: 5, Delay: 0}},
	{"slow.example", semaphore.Limits{Concurrency: 2, Delay: 200 * time.Millisecond}},
}

func testStressGoroutines(t *testing.T, b backend) {
	s := b.open(t, semaphore.Options{Heartbeat: 200 * time.Millisecond})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	var (
		mu  sync.Mutex
		evs []event
	)
	if err := hammer(ctx, s, stressKeys, 24, 0, func(e event) { mu.Lock(); evs = append(evs, e); mu.Unlock() }); err != nil {
		t.Fatal(err)
	}
	checkEvents(t, evs)
	t.Logf("%d turns observed", len(evs))
}

func testStressProcesses(t *testing.T, b backend) {
	prefix := uniquePrefix()
	const procs = 3
	hs := make([]*helper, procs)
	for i := range hs {
		hs[i] = startHelper(t, "hammer", helperConfig{Addrs: b.addrs, Cluster: b.cluster,
			Options: semaphore.Options{Prefix: prefix, Heartbeat: 200 * time.Millisecond},
			Keys:    stressKeys, Workers: 8, Proc: i, Duration: 3 * time.Second})
	}
	var evs []event
	perProc := make([]int, procs)
	for _, h := range hs {
		for {
			line := h.next(t, 30*time.Second)
			if line == "done" {
				break
			}
			var e event
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("helper line %q: %v", line, err)
			}
			evs = append(evs, e)
			perProc[e.Proc]++
		}
		h.wait(t, 10*time.Second)
	}
	checkEvents(t, evs)
	t.Logf("%d turns observed, per process %v", len(evs), perProc)
	for i, n := range perProc {
		if n == 0 {
			t.Errorf("process %d got no turn", i)
		}
	}
	// Every lease was released: nothing held or queued is left behind.
	s := b.open(t, semaphore.Options{Prefix: prefix})
	for _, k := range stressKeys {
		st, err := s.State(t.Context(), k.Name)
		if err != nil {
			t.Fatal(err)
		}
		if st.Holders != 0 || st.Waiters != 0 {
			t.Errorf("%s: %+v left after every worker released", k.Name, st)
		}
	}
}

// waitForWaiters waits until key has exactly n waiters.
func waitForWaiters(t *testing.T, s *semaphore.Semaphore, key string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := s.State(t.Context(), key)
		if err != nil {
			t.Fatal(err)
		}
		if st.Waiters == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters after 10s, want %d", st.Waiters, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testFIFOGoroutines(t *testing.T, b backend) {
	s := b.open(t, semaphore.Options{})
	l := semaphore.Limits{Concurrency: 1}
	first := mustAcquire(t, s, "fifo", l)
	const n = 8
	order := make(chan int, n)
	for i := range n {
		go func() {
			lease, err := s.Acquire(t.Context(), "fifo", l)
			if err != nil {
				t.Error(err)
				order <- -1
				return
			}
			order <- i
			_ = lease.Release(t.Context())
		}()
		waitForWaiters(t, s, "fifo", i+1)
	}
	mustRelease(t, first)
	for want := range n {
		if got := <-order; got != want {
			t.Fatalf("grant %d went to waiter %d: not first come, first served", want, got)
		}
	}
}

func testFIFOProcesses(t *testing.T, b backend) {
	s := b.open(t, semaphore.Options{})
	l := semaphore.Limits{Concurrency: 1}
	ks := []keySpec{{"fifo", l}}
	holder := mustAcquire(t, s, "fifo", l)
	cfg := helperConfig{Addrs: b.addrs, Cluster: b.cluster, Options: semaphore.Options{Prefix: s.Prefix()}, Keys: ks}
	const n = 5
	hs := make([]*helper, n)
	for i := range hs {
		hs[i] = startHelper(t, "wait", cfg)
		waitForWaiters(t, s, "fifo", i+1)
	}
	mustRelease(t, holder)
	last := holder.Token()
	for i, h := range hs {
		tok, err := strconv.ParseInt(h.expect(t, "granted", 10*time.Second)[0], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		if tok <= last {
			t.Fatalf("process %d (arrived %d) got token %d after token %d: served out of order", i, i, tok, last)
		}
		last = tok
		h.wait(t, 5*time.Second)
	}
}

func testMixedLimits(t *testing.T, b backend) {
	s := b.open(t, semaphore.Options{})
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	var (
		mu  sync.Mutex
		evs []event
	)
	emit := func(e event) { mu.Lock(); evs = append(evs, e); mu.Unlock() }
	strict := []keySpec{{"mixed", semaphore.Limits{Concurrency: 1, Delay: 5 * time.Millisecond}}}
	loose := []keySpec{{"mixed", semaphore.Limits{Concurrency: 4}}}
	errs := make(chan error, 2)
	go func() { errs <- hammer(ctx, s, strict, 4, 0, emit) }()
	go func() { errs <- hammer(ctx, s, loose, 8, 1, emit) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	var nStrict int
	for _, e := range evs {
		if e.Limit == 1 {
			nStrict++
		}
	}
	if nStrict == 0 || nStrict == len(evs) {
		t.Fatalf("both parties should get turns: %d strict of %d", nStrict, len(evs))
	}
	checkEvents(t, evs)
}

func testCancelLeavesQueue(t *testing.T, b backend) {
	s := b.open(t, semaphore.Options{})
	l := semaphore.Limits{Concurrency: 1}
	holder := mustAcquire(t, s, "cancel", l)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := s.Acquire(ctx, "cancel", l); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("acquire past its context = %v", err)
	}
	waitForWaiters(t, s, "cancel", 0)
	mustRelease(t, holder)
	st, err := s.State(t.Context(), "cancel")
	if err != nil {
		t.Fatal(err)
	}
	if st.Holders != 0 {
		t.Fatalf("the cancelled waiter was granted the slot: %+v", st)
	}
	mustRelease(t, mustAcquire(t, s, "cancel", l))
}

func testQueueFull(t *testing.T, b backend) {
	s := b.open(t, semaphore.Options{MaxQueue: 2})
	l := semaphore.Limits{Concurrency: 1}
	holder := mustAcquire(t, s, "full", l)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	for i := range 2 {
		go func() { _, _ = s.Acquire(ctx, "full", l) }()
		waitForWaiters(t, s, "full", i+1)
	}
	if _, err := s.Acquire(t.Context(), "full", l); !errors.Is(err, semaphore.ErrQueueFull) {
		t.Fatalf("third waiter: %v, want ErrQueueFull", err)
	}
	cancel()
	mustRelease(t, holder)
}

// testRetriedScripts replays each script call, as go-redis does when a reply is lost on the way back.
func testRetriedScripts(t *testing.T, b backend) {
	s := b.open(t, semaphore.Options{})
	ctx := t.Context()
	l := semaphore.Limits{Concurrency: 1}
	g1, err := s.RawAcquire(ctx, "retry", "rid-1", l)
	if err != nil || g1.Status != 1 {
		t.Fatalf("acquire: %+v %v", g1, err)
	}
	again, err := s.RawAcquire(ctx, "retry", "rid-1", l)
	if err != nil || again.Status != 1 || again.Token != g1.Token {
		t.Fatalf("replayed acquire: %+v %v, want the same grant %d", again, err, g1.Token)
	}
	if g2, err := s.RawAcquire(ctx, "retry", "rid-2", l); err != nil || g2.Status != 0 {
		t.Fatalf("second request with limit 1: %+v %v, want queued", g2, err)
	}
	if g3, err := s.RawAcquire(ctx, "retry", "rid-3", l); err != nil || g3.Status != 0 {
		t.Fatalf("third request: %+v %v, want queued", g3, err)
	}
	expectHolders := func(want int) {
		t.Helper()
		st, err := s.State(ctx, "retry")
		if err != nil {
			t.Fatal(err)
		}
		if st.Holders != want {
			t.Fatalf("holders = %d, want %d (%+v)", st.Holders, want, st)
		}
	}
	expectHolders(1)
	for range 2 { // the release and its replay: the slot goes to rid-2 only, rid-3 keeps waiting
		if err := s.RawLeave(ctx, "retry", "rid-1", g1.Token); err != nil {
			t.Fatal(err)
		}
		expectHolders(1)
	}
	if g, err := s.RawAcquire(ctx, "retry", "rid-3", l); err != nil || g.Status != 0 {
		t.Fatalf("rid-3 after a replayed release: %+v %v, want still queued", g, err)
	}
	g2, err := s.RawAcquire(ctx, "retry", "rid-2", l)
	if err != nil || g2.Status != 1 || g2.Token <= g1.Token {
		t.Fatalf("rid-2: %+v %v, want granted with a newer token", g2, err)
	}
	for _, rid := range []string{"rid-2", "rid-3"} {
		_ = s.RawLeave(ctx, "retry", rid, 0)
	}
}

func testStaleRelease(t *testing.T, b backend) {
	s := b.open(t, semaphore.Options{Lease: 300 * time.Millisecond, Heartbeat: 50 * time.Millisecond})
	ctx := t.Context()
	l := semaphore.Limits{Concurrency: 1}
	g1, err := s.RawAcquire(ctx, "stale", "old", l) // raw: no automatic refresh
	if err != nil || g1.Status != 1 {
		t.Fatalf("acquire: %+v %v", g1, err)
	}
	fresh := mustAcquire(t, s, "stale", l) // granted once the old lease runs out
	defer mustRelease(t, fresh)
	if err := s.RawLeave(ctx, "stale", "old", g1.Token); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RawRefresh(ctx, "stale", "old", g1.Token); !errors.Is(err, semaphore.ErrLost) {
		t.Fatalf("refresh of an expired lease = %v, want lost", err)
	}
	// A release with the right request id but a wrong token is fenced off.
	if err := s.RawLeave(ctx, "stale", fresh.RequestID(), fresh.Token()+1); err != nil {
		t.Fatal(err)
	}
	if g, err := s.RawAcquire(ctx, "stale", "third", l); err != nil || g.Status != 0 {
		t.Fatalf("after stale and fenced releases a newcomer got %+v %v; the slot must still be held", g, err)
	}
	_ = s.RawLeave(ctx, "stale", "third", 0)
}

func testLeaseRefresh(t *testing.T, b backend) {
	s := b.open(t, semaphore.Options{Lease: 200 * time.Millisecond, Heartbeat: 50 * time.Millisecond})
	l := semaphore.Limits{Concurrency: 1}
	held := mustAcquire(t, s, "refresh", l)
	ctx, cancel := context.WithTimeout(t.Context(), time.Second) // five leases long
	defer cancel()
	if other, err := s.Acquire(ctx, "refresh", l); err == nil {
		_ = other.Release(t.Context())
		t.Fatal("a second holder got in while the first was held past its initial lease")
	}
	select {
	case <-held.Lost():
		t.Fatal("lease lost although refreshed")
	default:
	}
	mustRelease(t, held)
	mustRelease(t, mustAcquire(t, s, "refresh", l))
}

func testBackoff(t *testing.T, b backend) {
	s := b.open(t, semaphore.Options{BackoffBase: 40 * time.Millisecond, MaxBackoff: 300 * time.Millisecond})
	ctx := t.Context()
	before := time.Now()
	d, err := s.Backoff(ctx, "bo", 200*time.Millisecond)
	if err != nil || d != 200*time.Millisecond {
		t.Fatalf("backoff = %v %v", d, err)
	}
	lease := mustAcquire(t, s, "bo", semaphore.Limits{Concurrency: 5})
	// The backend counts in whole milliseconds, so its clock may read up to 1ms behind ours.
	if early := before.Add(200*time.Millisecond - time.Millisecond).Sub(lease.Start()); early > 0 {
		t.Fatalf("lease starts %v before the backoff ends", early)
	}
	mustRelease(t, lease)
	st, err := s.State(ctx, "bo")
	if err != nil || st.Backoff <= 0 || st.BackoffLevel != 1 {
		t.Fatalf("state during backoff: %+v %v", st, err)
	}
	for i, want := range []time.Duration{80, 160, 300, 300} { // exponential from level 2, capped
		d, err := s.Backoff(ctx, "bo", 0)
		if err != nil || d != want*time.Millisecond {
			t.Fatalf("backoff %d = %v %v, want %v", i+2, d, err, want*time.Millisecond)
		}
	}
	if d, _ := s.Backoff(ctx, "bo", time.Hour); d != 300*time.Millisecond {
		t.Fatalf("Retry-After above the cap applied as %v", d)
	}
}

// testLateStart: a holder that reports starting later than its grant's start moves the key's next
// start to a delay after that actual start: for the waiter its release hands the slot to, for a
// newcomer after the release, and for a grant made after a refresh that carried the report.
func testLateStart(t *testing.T, b backend) {
	ctx := t.Context()
	s := b.open(t, semaphore.Options{Lease: 300 * time.Millisecond})
	l := semaphore.Limits{Concurrency: 1, Delay: 150 * time.Millisecond}
	late := func(lease *semaphore.Lease, by time.Duration) time.Time {
		if err := lease.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(by)
		at := time.Now()
		lease.Started(at)
		return at
	}
	check := func(what string, began time.Time, next *semaphore.Lease, delay time.Duration) {
		t.Helper()
		if early := began.Add(delay).Sub(next.Start()); early > 0 {
			t.Fatalf("%s: starts %v before the delay after the previous actual start", what, early)
		}
	}

	first := mustAcquire(t, s, "late", l)
	began := late(first, 100*time.Millisecond)
	got := make(chan *semaphore.Lease, 1)
	go func() {
		lease, err := s.Acquire(ctx, "late", l)
		if err != nil {
			t.Error(err)
		}
		got <- lease
	}()
	for st, _ := s.State(ctx, "late"); st.Waiters == 0; st, _ = s.State(ctx, "late") {
		time.Sleep(5 * time.Millisecond)
	}
	mustRelease(t, first)
	second := <-got
	if second == nil {
		t.FailNow()
	}
	check("the waiter granted by the release", began, second, l.Delay)

	began = late(second, 80*time.Millisecond)
	mustRelease(t, second)
	third := mustAcquire(t, s, "late", l)
	check("a newcomer after the release", began, third, l.Delay)
	mustRelease(t, third) // never started: reports nothing, the gate stays where the grant put it
	fourth := mustAcquire(t, s, "late", l)
	if gap := fourth.Start().Sub(third.Start()); gap > l.Delay+50*time.Millisecond {
		t.Fatalf("a release without a start moved the gate: %v after the previous start, delay %v", gap, l.Delay)
	}
	mustRelease(t, fourth)

	// Two at once: the second slot is granted while the first is held, after the first's refresh
	// (at two thirds of the 300 ms lease) reported its late start.
	two := semaphore.Limits{Concurrency: 2, Delay: 400 * time.Millisecond}
	a := mustAcquire(t, s, "late2", two)
	began = late(a, 100*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	b2 := mustAcquire(t, s, "late2", two)
	check("a grant after the refresh", began, b2, two.Delay)
	mustRelease(t, a)
	mustRelease(t, b2)
}

func testIdleKeyVanishes(t *testing.T, b backend) {
	prefix := uniquePrefix()
	s := b.open(t, semaphore.Options{Prefix: prefix})
	ctx := t.Context()
	mustRelease(t, mustAcquire(t, s, "idle", semaphore.Limits{Concurrency: 1, Delay: 300 * time.Millisecond}))
	if _, err := s.Backoff(ctx, "idle", 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if b.shared() {
		keys := keysWithPrefix(t, b, prefix)
		if len(keys) == 0 {
			t.Fatal("no keys while the gate is closed: the delay would be forgotten")
		}
		for _, k := range keys {
			if ttl := pttl(t, b, k); ttl <= 0 || ttl > 300*time.Millisecond+2*time.Second {
				t.Errorf("key %s has TTL %v; every key must expire within 2s after the key's horizon (the 300ms gate)", k, ttl)
			}
		}
	}
	// Horizon: the gate (300ms) plus one second of grace; the in-process sweep runs every second.
	deadline := time.Now().Add(4 * time.Second)
	for {
		var n int
		if b.shared() {
			n = len(keysWithPrefix(t, b, prefix))
		} else {
			n = s.LocalKeys()
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d keys still there long after the horizon", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func pttl(t *testing.T, b backend, key string) time.Duration {
	t.Helper()
	d, err := b.client.PTTL(t.Context(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func testOddKeys(t *testing.T, b backend) {
	s := b.open(t, semaphore.Options{})
	for _, k := range []string{"[::1]:8080", "a}b{c", "xn--bcher-kva.example", "{}", strings.Repeat("x", 300)} {
		mustRelease(t, mustAcquire(t, s, k, semaphore.Limits{Concurrency: 1}))
	}
}

func testKilledHolder(t *testing.T, b backend) {
	const lease = time.Second
	opts := semaphore.Options{Lease: lease, Heartbeat: 100 * time.Millisecond}
	s := b.open(t, opts)
	opts.Prefix = s.Prefix()
	l := semaphore.Limits{Concurrency: 1}
	h := startHelper(t, "hold", helperConfig{Addrs: b.addrs, Cluster: b.cluster, Options: opts, Keys: []keySpec{{"killed", l}}})
	h.expect(t, "held", 10*time.Second)
	h.kill()
	killed := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	lease2, err := s.Acquire(ctx, "killed", l)
	if err != nil {
		t.Fatalf("slot of a killed holder never freed: %v", err)
	}
	waited := time.Since(killed)
	mustRelease(t, lease2)
	// The helper's refresh at 2/3 of the lease may have renewed it just before the kill, so the slot
	// frees at most one lease after the kill; the waiter notices within one heartbeat (the recheck
	// hint points at the expiry). The bound includes one heartbeat for scheduling under -race.
	if limit := lease + 2*opts.Heartbeat; waited > limit {
		t.Fatalf("slot freed %v after the holder was killed, want within %v", waited, limit)
	}
	t.Logf("slot of the killed holder granted %v after the kill (lease %v)", waited, lease)
}

func testKilledWaiter(t *testing.T, b backend) {
	opts := semaphore.Options{Heartbeat: 100 * time.Millisecond, WaiterTTL: 500 * time.Millisecond}
	s := b.open(t, opts)
	opts.Prefix = s.Prefix()
	l := semaphore.Limits{Concurrency: 1}
	holder := mustAcquire(t, s, "kw", l)
	h := startHelper(t, "wait", helperConfig{Addrs: b.addrs, Cluster: b.cluster, Options: opts, Keys: []keySpec{{"kw", l}}})
	waitForWaiters(t, s, "kw", 1)
	h.kill()
	killed := time.Now()
	got := make(chan error, 1)
	go func() {
		lease, err := s.Acquire(t.Context(), "kw", l)
		if err == nil {
			err = lease.Release(t.Context())
		}
		got <- err
	}()
	waitForWaiters(t, s, "kw", 2)
	mustRelease(t, holder) // the slot is handed to the dead waiter at the head, if it is still listed
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a killed waiter blocks the queue")
	}
	waited := time.Since(killed)
	// The dead waiter is dropped when its TTL runs out; a slot handed to it just before lasts no
	// longer than its TTL either. One heartbeat to notice, one for scheduling under -race.
	if limit := opts.WaiterTTL + 2*opts.Heartbeat; waited > limit {
		t.Fatalf("live waiter served %v after the kill, want within %v", waited, limit)
	}
}

// testNoClientTimestamps records every argument the client sends to Redis and shows none of them is
// a point in time: all are durations, counts or identifiers, so the client's clock cannot matter.
func testNoClientTimestamps(t *testing.T, b backend) {
	rec := &argRecorder{}
	c := newClient(b.addrs, b.cluster)
	defer c.Close()
	c.AddHook(rec)
	s, err := semaphore.NewRedis(c, semaphore.Options{Prefix: uniquePrefix(), Lease: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	l := semaphore.Limits{Concurrency: 1, Delay: 10 * time.Millisecond}
	held := mustAcquire(t, s, "clock", l)
	held.Started(time.Now())                                                  // reported as a duration with the refresh and the release
	go func() { time.Sleep(400 * time.Millisecond); _ = held.Release(ctx) }() // refreshed meanwhile
	mustRelease(t, mustAcquire(t, s, "clock", l))
	if _, err := s.Backoff(ctx, "clock", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.State(ctx, "clock"); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	scripts := 0
	for _, args := range rec.all() {
		name := strings.ToLower(args[0])
		if name != "evalsha" && name != "eval" {
			continue
		}
		scripts++
		for _, a := range args[3:] {
			n, err := strconv.ParseInt(a, 10, 64)
			if err != nil {
				continue
			}
			// Anything within ten years of now in seconds, milliseconds or microseconds is a clock reading.
			for _, unit := range []int64{1, 1e3, 1e6} {
				if abs(n-now.Unix()*unit) < 10*365*24*3600*unit {
					t.Errorf("client sent %d in %v: looks like a timestamp", n, args)
				}
			}
		}
	}
	if scripts < 5 {
		t.Fatalf("recorded %d script calls, expected acquire, refresh, release, backoff and state", scripts)
	}
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

type argRecorder struct {
	mu   sync.Mutex
	args [][]string
}

func (r *argRecorder) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *argRecorder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		var a []string
		for _, x := range cmd.Args() {
			a = append(a, toString(x))
		}
		r.mu.Lock()
		r.args = append(r.args, a)
		r.mu.Unlock()
		return next(ctx, cmd)
	}
}
func (r *argRecorder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (r *argRecorder) all() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]string(nil), r.args...)
}
