// Package semaphore is a fair, per-key counting semaphore with a start gate: at most N holders per
// key at once, consecutive starts at least a delay apart, and waiters served in arrival order. It
// is shared by every process that uses the same Redis (NewRedis), or held in one process
// (NewLocal); both backends have the same semantics.
//
// # Use
//
// Acquire asks for a turn on a key with the request's Limits (the concurrency and the delay) and
// returns a Lease once a slot is granted. The lease says when its holder may start (Lease.Wait
// sleeps until Lease.Start, locally, without polling), refreshes itself in the background while
// held, and is given back with Lease.Release. A holder records when its work actually began with
// Lease.Started, and stops that work if Lease.Lost is closed (the lease could not be refreshed).
// Backoff pushes a key's next start later for everyone (an upstream's 429 or 503); State reads a
// key's live state.
//
// # Guarantees
//
// On both backends, for every key:
//   - at no instant do more than Limits.Concurrency leases exist, across all processes;
//   - consecutive grants' starts are at least Limits.Delay apart on the backend's clock;
//   - waiters are served first come, first served across processes: a newcomer never overtakes;
//   - a holder that dies frees its slot within its lease (Options.Lease); a waiter that dies stops
//     blocking within Options.WaiterTTL;
//   - only the backend's clock (Redis TIME) decides time: clients send durations, never timestamps;
//   - every operation is one server-side script, idempotent per request id (go-redis retries on
//     network errors), and every key it writes gets its expiry in the same script: an idle key
//     leaves nothing behind;
//   - release and refresh present the lease's fencing token: a stale release cannot free another
//     holder's slot.
//
// Redis replicates asynchronously: a failover can lose grants, and the processes may then admit
// more than the limit, for at most one lease.
//
// # Late holders
//
// A holder let go late (its process starved of CPU or stopped) starts later than its grant said.
// Its release and refreshes report the time elapsed since Lease.Started (a duration on the holder's
// monotonic clock), and the script moves the key's gate to a delay after that start, which it can
// only overestimate, before it grants the freed slot. With a concurrency of 1 every grant comes from
// a release or after one (unless the late holder outlives its lease), so consecutive actual starts
// stay at least the delay apart whatever the lateness. With more, a slot granted while the late
// holder still held keeps the start it was given: the gap between the two can be short by up to the
// lateness.
//
// # Different limits for one key
//
// Each request is admitted under its own limits and under those of every current holder (a slot is
// granted only while fewer leases exist than the smallest of those limits), and its start is at
// least its own delay and the previous grant's delay after the previous start: the strictest party
// present always gets what it asked for.
//
// # Redis
//
// Waiters are woken by a push: a release hands the freed slot to the head of the queue in the same
// script and publishes the grant to the waiter's process, so a waiter pays one round trip in all; a
// slow heartbeat (an idempotent re-acquire) covers lost messages. The keys of one semaphore key share
// the hash tag "{key}" under Options.Prefix (Slot computes its Cluster slot), so the scripts run on
// Redis Cluster; *redis.Client (one server, or Sentinel's failover client) and *redis.ClusterClient
// are both supported. Active and Observer read the live state of many keys for dashboards, off the
// request path.
//
// The package knows nothing of HTTP or of what a key names.
package semaphore
