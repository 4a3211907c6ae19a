package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/crawlpolite/crawlpolite/internal/throttle"
	"github.com/crawlpolite/crawlpolite/pkg/semaphore"
)

// /debug/hosts answers at most debugHostsMax hosts (debugHostsDefault unless ?limit= says), so one
// request costs the sidecar a bounded copy of its counts and no Redis call.
const (
	debugHostsDefault = 100
	debugHostsMax     = 1000
	publishEvery      = time.Second
)

// debugHosts answers GET /debug/hosts[?host=PATTERN][&limit=N]: this sidecar's requests per host
// now (in flight at the origin, granted and waiting for their start, queued), busiest first, as
// JSON. PATTERN is a shell pattern (*.example.com).
func (a *admin) debugHosts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := debugHostsDefault
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > debugHostsMax {
			http.Error(w, "limit: want 1 to "+strconv.Itoa(debugHostsMax), http.StatusBadRequest)
			return
		}
		limit = n
	}
	load, matched := a.thr.Hosts().Snapshot(strings.ToLower(q.Get("host")), limit)
	out := debugHostsReply{At: time.Now().UTC().Format(time.RFC3339Nano), Matched: matched, Hosts: make([]debugHost, 0, len(load))}
	for _, l := range load {
		out.Hosts = append(out.Hosts, debugHost{Host: l.Key, InFlight: l.InFlight, Starting: l.Starting, Waiting: l.Waiting,
			DelaySource: l.DelaySource, Robots: l.Robots})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

type debugHostsReply struct {
	At      string      `json:"at"`
	Matched int         `json:"matched"` // hosts with requests now matching the pattern; hosts lists the first limit
	Hosts   []debugHost `json:"hosts"`
}

type debugHost struct {
	Host        string `json:"host"`
	InFlight    int    `json:"inFlight"`
	Starting    int    `json:"starting"`
	Waiting     int    `json:"waiting"`
	DelaySource string `json:"delaySource"`
	Robots      string `json:"robots"`
}

// publishHosts reports this sidecar's hosts to the shared registry once a second until ctx ends,
// off the request path: the hosts used since the last report and the load of the busiest (what
// `crawlpolite top` ranks by). A failed report is retried with the next one; after ctx ends a last
// report clears this sidecar's load.
//
// It has a Redis client of its own (one connection, its own view of health): a report that fails
// or waits during a failover must not trip the breaker the requests share, nor hold one of their
// connections.
func publishHosts(ctx context.Context, o Options, hosts *throttle.Hosts, log *slog.Logger) (done <-chan struct{}) {
	ch := make(chan struct{})
	rdb, err := newRedis(o.Redis, o.RedisPassword)
	if err != nil || rdb == nil { // validated when the request path's client was made
		close(ch)
		return ch
	}
	act := semaphore.NewActive(rdb, semaphore.ActiveOptions{})
	id := processID()
	go func() {
		defer close(ch)
		defer rdb.Close()
		t := time.NewTicker(publishEvery)
		defer t.Stop()
		loaded := false // the last report carried load, so an empty one must replace it
		publish := func(ctx context.Context) {
			used, load := hosts.Report(act.MaxLoad())
			if len(used) == 0 && len(load) == 0 && !loaded {
				return
			}
			pctx, cancel := context.WithTimeout(ctx, publishEvery)
			defer cancel()
			if err := act.Publish(pctx, id, used, load); err != nil {
				log.Debug("active hosts not published", "error", err.Error())
				return
			}
			loaded = len(load) > 0
		}
		for {
			select {
			case <-ctx.Done():
				if loaded {
					publish(context.WithoutCancel(ctx))
				}
				return
			case <-t.C:
				publish(ctx)
			}
		}
	}()
	return ch
}

// processID names this sidecar in the registry: the pod's hostname and a random suffix, so a
// restarted container does not take over its predecessor's report.
func processID() string {
	h, _ := os.Hostname()
	h = strings.Map(func(r rune) rune {
		if r <= ' ' || r > '~' {
			return '_'
		}
		return r
	}, h)
	var b [4]byte
	_, _ = rand.Read(b[:])
	return h + "-" + hex.EncodeToString(b[:])
}
