// Package redistest starts real redis-server processes for tests: a single server, a six-node
// Redis Cluster (three masters, three replicas) or a Sentinel-managed primary (one master, two
// replicas, three redis-sentinels), each on free loopback ports in a temporary directory, with
// persistence off, stopped by PID when the test ends. Fault tests kill (SIGKILL), pause (SIGSTOP)
// and resume (SIGCONT) servers, ask which master serves a key's slot, and open a black hole (a
// listener that accepts and never answers).
//
// Tests get the addresses of servers they started themselves and nothing else, so a test never
// touches a Redis it did not start. It knows nothing of crawlpolite's keys or scripts.
//
// When redis-server is missing the test is skipped, unless CI is set, where it fails: `make test`
// installs it (hack/test-deps.sh), so a missing binary in CI is a broken setup, not a reason to skip.
package redistest
