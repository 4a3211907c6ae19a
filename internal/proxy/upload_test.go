package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSlowUpload: a request body that keeps moving, more slowly than the response header timeout
// allows for the whole of it, reaches the origin whole; one that stalls for longer than the upload
// idle timeout is cut off. On the old h1.go the whole request write was bounded by the response
// header timeout: the slow upload got 502.
func TestSlowUpload(t *testing.T) {
	type seen struct {
		body string
		at   time.Time
	}
	got := make(chan seen, 4)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			got <- seen{"error: " + err.Error(), time.Now()}
			return
		}
		got <- seen{string(b), time.Now()}
		_, _ = io.WriteString(w, strconv.Itoa(len(b)))
	}))
	defer origin.Close()
	h := newHarness(t, Options{ResponseHeaderTimeout: 300 * time.Millisecond, UploadIdleTimeout: 500 * time.Millisecond}, nil)
	upload := func(chunks int, gap time.Duration, stallAt int) (*http.Response, error) {
		conn, err := net.Dial("tcp", h.url.Host)
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { conn.Close() })
		_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
		head := fmt.Sprintf("POST %s/up HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n",
			origin.URL, strings.TrimPrefix(origin.URL, "http://"), chunks*10)
		if _, err := io.WriteString(conn, head); err != nil {
			return nil, err
		}
		for i := range chunks {
			if i == stallAt {
				time.Sleep(2 * time.Second)
			}
			if _, err := io.WriteString(conn, "0123456789"); err != nil {
				break // the proxy gave up on the body
			}
			time.Sleep(gap)
		}
		return http.ReadResponse(bufio.NewReader(conn), nil)
	}

	// 15 chunks 100 ms apart: 1.5 s of body, five times the header timeout, each step within the
	// idle timeout.
	resp, err := upload(15, 100*time.Millisecond, -1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(b) != "150" {
		t.Fatalf("slow upload: %d %q, want 200 \"150\"", resp.StatusCode, b)
	}
	if s := <-got; len(s.body) != 150 {
		t.Fatalf("origin got %q", s.body)
	}

	// A body that stops for 2 s, four idle timeouts: cut off, the origin sees a broken body.
	start := time.Now()
	resp, err = upload(5, 10*time.Millisecond, 2)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestTimeout {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("stalled upload answered %d %q", resp.StatusCode, b)
		}
	}
	select {
	case s := <-got:
		if !strings.HasPrefix(s.body, "error") {
			t.Fatalf("origin got a whole body %q from a stalled upload", s.body)
		}
		if d := s.at.Sub(start); d > 1500*time.Millisecond {
			t.Fatalf("stalled upload cut off after %v, want about the idle timeout", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("origin never saw the stalled upload end")
	}
}
