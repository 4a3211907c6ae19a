// Package semaphore is a fair, per-key counting semaphore with a start gate, shared by every process
// that uses the same Redis, or held in process for a single user.
//
// A caller asks for a turn on a key (a host) with its Limits: how many leases may exist at once and
// the minimum gap between consecutive starts. Acquire returns a Lease once a slot is granted; the
// lease says when the caller may start (Lease.Wait sleeps until then, locally, without polling),
// refreshes itself while held, and is given back with Release.
//
// Invariants, demonstrated by the conformance tests against a real redis-server, a real Redis Cluster
// and the in-process backend:
//   - at no instant do more than Limits.Concurrency leases exist for a key, across all processes;
//   - consecutive grants' starts are at least Limits.Delay apart on the backend's clock;
//   - waiters are served first come, first served across processes; a newcomer never overtakes;
//   - a holder that dies frees its slot within its lease; a waiter that dies stops blocking within
//     Options.WaiterTTL;
//   - only the backend's clock (Redis TIME) decides time: clients send durations, never timestamps;
//   - every operation is one server-side script, idempotent per request id (go-redis retries on
//     network errors), and every key it writes gets its expiry in the same script, so an idle key
//     leaves nothing behind;
//   - release and refresh present a fencing token: a stale release cannot free another's slot.
//
// A release hands the freed slot to the head of the queue in the same script and pushes the grant
// over pub/sub to the waiter's process, so a waiter pays one round trip in all; a slow heartbeat
// (an idempotent re-acquire) covers lost messages and holders that die.
//
// A holder let go late (its process starved of CPU or stopped) starts later than its grant said.
// Lease.Started records when it actually began; its release and refreshes report the time elapsed
// since then (a duration on the holder's monotonic clock, never a timestamp), and the script moves
// the key's gate to a delay after that start, which it can only overestimate, before it grants the
// freed slot. With a concurrency of 1 every grant comes from a release or after one (unless the
// late holder outlives its lease), so consecutive actual starts stay at least the delay apart
// whatever the lateness. With more, a slot granted while the late holder still held keeps the start
// it was given: the gap between the two can be short by up to the lateness. See TestConformance's
// late start case.
//
// Callers that pass different limits for one key: each request is admitted under its own limits and
// under those of every current holder (a slot is granted only while fewer leases exist than the
// smallest of those limits), and its start is at least its own delay and the previous grant's delay
// after the previous start. So the strictest party present always gets what it asked for; see
// TestMixedLimits.
//
// The package knows nothing of HTTP, robots.txt or Kubernetes.
package semaphore
