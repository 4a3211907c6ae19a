package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Cluster is a six-node Redis Cluster (three masters, three replicas) started by a test.
type Cluster struct {
	Nodes []*Server
}

// StartCluster starts six cluster-enabled redis-servers (cluster-node-timeout 2s; extra arguments
// are passed to each, such as "--cluster-require-full-coverage", "no") and joins them with
// `redis-cli --cluster create --cluster-replicas 1`. It returns once every slot is served and the
// replicas are linked, and stops every node when the test ends.
func StartCluster(t testing.TB, extra ...string) *Cluster {
	t.Helper()
	cli := lookBin(t, "redis-cli")
	// `redis-cli --cluster create` waits for the nodes to join with no deadline of its own: on a
	// loaded machine a join can stall, so it gets one, and one more try on fresh nodes.
	var lastErr error
	for range 2 {
		c := &Cluster{}
		addrs := make([]string, 0, 6)
		for range 6 {
			s := startNode(t, append([]string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
				"--cluster-node-timeout", "2000", "--repl-diskless-sync-delay", "0"}, extra...))
			c.Nodes = append(c.Nodes, s)
			addrs = append(addrs, s.Addr)
		}
		args := append([]string{"--cluster", "create"}, addrs...)
		args = append(args, "--cluster-replicas", "1", "--cluster-yes")
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
		cancel()
		if err == nil {
			err = c.waitReady(30 * time.Second)
		}
		if err == nil {
			return c
		}
		lastErr = fmt.Errorf("cluster create: %w\n%s", err, out)
		for _, n := range c.Nodes {
			n.Stop()
		}
	}
	t.Fatalf("redistest: %v", lastErr)
	return nil
}

// Addrs returns every node's address, for a cluster client's seed list.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr
	}
	return out
}

func (c *Cluster) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if c.ready() {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("cluster not ready after %v", timeout)
}

// ready reports whether every node sees the cluster as ok and every replica's link is up.
func (c *Cluster) ready() bool {
	replicas := 0
	for _, n := range c.Nodes {
		info, err := n.Do("CLUSTER", "INFO")
		if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
			return false
		}
		repl, err := n.Do("INFO", "replication")
		if err != nil {
			return false
		}
		if strings.Contains(repl, "role:slave") {
			if !strings.Contains(repl, "master_link_status:up") {
				return false
			}
			replicas++
		}
	}
	return replicas == 3
}

// startNode starts one cluster node. A node also listens on its port + 10000 (the cluster bus),
// which freePort never checked: in the ephemeral range, after a test that opened thousands of
// connections, that port can be taken and redis-server exits at start. So both ports are checked
// free, and a node that still fails to start is tried again on fresh ones.
func startNode(t testing.TB, args []string) *Server {
	t.Helper()
	bin := lookBin(t, "redis-server")
	var err error
	for range 5 {
		s := &Server{Dir: t.TempDir()}
		s.args = append([]string{"--save", "", "--appendonly", "no", "--bind", "127.0.0.1",
			"--protected-mode", "no", "--dir", s.Dir}, args...)
		port := freeBusPort(t)
		if err = s.start(bin, port); err == nil {
			t.Cleanup(s.Stop)
			return s
		}
		s.Stop()
		if logs, rerr := os.ReadFile(filepath.Join(s.Dir, fmt.Sprintf("redis-%d.log", port))); rerr == nil {
			err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(logs)))
		}
	}
	t.Fatalf("redistest: cluster node: %v", err)
	return nil
}

// freeBusPort is a free loopback port below 55536 whose cluster bus port (+10000) is free too.
func freeBusPort(t testing.TB) int {
	t.Helper()
	for range 100 {
		p := freePort(t)
		if p > 55535 {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+10000)))
		if err != nil {
			continue
		}
		_ = l.Close()
		return p
	}
	t.Fatal("redistest: no free port pair for a cluster node")
	return 0
}
