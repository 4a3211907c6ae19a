package main_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/crawlpolite/crawlpolite/internal/redistest"
)

// TestDrain: SIGTERM lets the request in flight finish, refuses nothing already accepted, releases
// its turn and exits 0; POST /quitquitquit does the same.
func TestDrain(t *testing.T) {
	rs := redistest.Start(t)
	a := newOrigin(t, robotsA, 500*time.Millisecond, false)
	pol := writePolicy(t, a.host(), "")
	for _, how := range []string{"SIGTERM", "quitquitquit"} {
		t.Run(how, func(t *testing.T) {
			s := startSidecar(t, nil, "--redis=redis://"+rs.Addr, "--policy-file="+pol)
			c := s.client(t, false)
			type result struct {
				code int
				body string
				err  error
			}
			res := make(chan result, 1)
			go func() {
				resp, err := c.Get("http://" + a.host() + "/in-flight")
				if err != nil {
					res <- result{err: err}
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				res <- result{resp.StatusCode, string(b), err}
			}()
			for a.holding() == 0 {
				time.Sleep(5 * time.Millisecond)
			}
			if how == "SIGTERM" {
				_ = s.cmd.Process.Signal(syscall.SIGTERM)
			} else {
				s.quit(t)
			}
			r := <-res
			if r.err != nil || r.code != 200 || r.body != "page /in-flight\n" {
				t.Fatalf("request in flight during the drain: %d %q %v", r.code, r.body, r.err)
			}
			select {
			case err := <-s.exit:
				if err != nil {
					t.Fatalf("exit: %v, want 0", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no exit after the drain")
			}
			if !strings.Contains(s.logs(), `"msg":"stopped"`) {
				t.Error("no stopped line in the log")
			}
			other := startSidecar(t, nil, "--redis=redis://"+rs.Addr, "--policy-file="+pol)
			checkIdle(t, other, a.host())
		})
	}
}

// TestPolicyReload: a changed policy file applies without restart; a bad one is logged and the last
// good policy stays.
func TestPolicyReload(t *testing.T) {
	a := newOrigin(t, robotsA, time.Millisecond, false)
	pol := writePolicy(t, a.host(), "")
	s := startSidecar(t, nil, "--policy-file="+pol, "--reload-interval=50ms")
	c := s.client(t, false)
	// The limit shows in the state of a host with a request held: the last grant's.
	limit := func(path string) int {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		before := a.holding()
		go func() {
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+a.host()+"/slow"+path, nil)
			if resp, err := c.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
		waitFor(t, "the request to be held", func() bool { return a.holding() > before })
		return s.state(t, a.host()).Limit
	}
	if got := limit("/before"); got != limitA {
		t.Fatalf("limit %d before the reload, want %d", got, limitA)
	}
	doc := fmt.Sprintf("defaults:\n  minDelay: 0s\nrules:\n  - hosts: [%q]\n    maxConcurrency: 7\n", a.host())
	if err := os.WriteFile(pol, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reload", func() bool { return strings.Contains(s.logs(), `"msg":"policy reloaded"`) })
	if got := limit("/after"); got != 7 {
		t.Fatalf("limit %d after the reload, want 7", got)
	}
	if err := os.WriteFile(pol, []byte("defaults:\n  maxConcurrency: -1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the failed reload", func() bool { return strings.Contains(s.logs(), "keeping the last good policy") })
	if !strings.Contains(s.logs(), "line 2") {
		t.Errorf("the failed reload's log does not name the line:\n%s", s.logs())
	}
	if got := limit("/still"); got != 7 {
		t.Fatalf("limit %d after a bad reload, want the last good 7", got)
	}
}

// TestBackoff: an origin's 429 with Retry-After reaches the crawler unchanged and holds every
// sidecar sharing Redis back for that long.
func TestBackoff(t *testing.T) {
	rs := redistest.Start(t)
	a := newOrigin(t, robotsA, time.Millisecond, false)
	pol := writePolicy(t, a.host(), "")
	s1 := startSidecar(t, nil, "--redis=redis://"+rs.Addr, "--policy-file="+pol)
	s2 := startSidecar(t, nil, "--redis=redis://"+rs.Addr, "--policy-file="+pol)
	resp, err := s1.client(t, false).Get("http://" + a.host() + "/busy")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "2" {
		t.Fatalf("origin's 429 reached the crawler as %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if st := s2.state(t, a.host()); st.Backoff == "0s" || st.Backoff == "" {
		t.Fatalf("backoff not visible in the shared state: %+v", st)
	}
	began := time.Now()
	resp, err = s2.client(t, false).Get("http://" + a.host() + "/next")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if waited := time.Since(began); waited < 1500*time.Millisecond {
		t.Fatalf("the other sidecar's next request started after %v, within the origin's Retry-After of 2s", waited)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWaitReady: the legacy sidecar's postStart hook returns once the sidecar is ready, and fails
// when it never is.
func TestWaitReady(t *testing.T) {
	s := startSidecar(t, nil)
	if out, err := exec.Command(binary, "wait-ready", "--admin-listen="+s.admin, "--timeout=10s").CombinedOutput(); err != nil {
		t.Fatalf("wait-ready on a ready sidecar: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // nothing listens there now
	out, err := exec.Command(binary, "wait-ready", "--admin-listen="+addr, "--timeout=300ms").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not ready after 300ms") {
		t.Fatalf("wait-ready with no sidecar: want a failure, got %v\n%s", err, out)
	}
}

// TestQuitNeedsToken: a crawled redirect can make the crawler POST to the admin port (from loopback,
// like the pod's own containers, or from 127.0.0.6 behind Istio), so the source proves nothing: only
// the token on the shared volume stops the sidecar.
func TestQuitNeedsToken(t *testing.T) {
	s := startSidecar(t, nil)
	for _, auth := range []string{"", "Bearer ", "Bearer wrong", "Basic " + s.quitToken(t), s.quitToken(t)} {
		if code := s.postQuit(t, auth); code != http.StatusForbidden {
			t.Fatalf("quitquitquit with Authorization %q: %d, want 403", auth, code)
		}
	}
	if code, _ := s.adminGet(t, "/readyz"); code != http.StatusOK {
		t.Fatalf("sidecar not serving after refused quits: %d", code)
	}
	s.quit(t)
	select {
	case err := <-s.exit:
		if err != nil {
			t.Fatalf("exit after quit: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("sidecar did not stop after quit with the token")
	}
}
