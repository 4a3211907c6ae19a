package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crawlpolite/crawlpolite/internal/policy"
	"github.com/crawlpolite/crawlpolite/pkg/semaphore"
)

// One refresh reads the live state of observePerRow x -n hosts (at least minObserved, at most
// maxObserved), whatever the number of active hosts: the busiest by the sidecars' load reports
// (at most a second old, bounded per sidecar), plus a host named exactly by --host. The rows shown
// are then ordered by that live state.
const (
	observePerRow = 10
	minObserved   = 200
	maxObserved   = 2000
)

// topRow is one host of `top -o json` (the contract: tests and scripts rely on these names).
type topRow struct {
	Host         string  `json:"host"`
	InFlight     int     `json:"inFlight"`
	Starting     int     `json:"starting"`
	Waiting      int     `json:"waiting"`
	Limit        int     `json:"limit"`
	Delay        string  `json:"delay"`
	DelaySource  string  `json:"delaySource"`
	NextStartIn  string  `json:"nextStartIn"`
	BackoffUntil *string `json:"backoffUntil"`
	Robots       string  `json:"robots"`
}

type topReply struct {
	At    string   `json:"at"`
	Hosts []topRow `json:"hosts"`
}

// topView is what a refresh shows, with the counts the table header tells.
type topView struct {
	at       time.Time
	rows     []topRow
	sidecars int
	active   int64
	ranked   int // hosts with load in the sidecars' reports
}

type topOptions struct {
	pattern string
	sortBy  string
	limit   int
}

func cmdTop(ctx context.Context, c *common, args []string) error {
	fs := newFlags("top")
	c.flags(fs)
	var (
		o        topOptions
		once     bool
		interval time.Duration
	)
	fs.StringVar(&o.pattern, "host", "", "only hosts matching this pattern (*.example.com); an exact host is shown even when idle")
	fs.StringVar(&o.sortBy, "sort", "inflight", "order: inflight (then waiting), waiting, starting, delay, host")
	fs.IntVar(&o.limit, "n", 20, "rows at most")
	fs.BoolVar(&once, "once", false, "print one table (or JSON document) and exit")
	fs.DurationVar(&interval, "interval", time.Second, "refresh period")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if !slices.Contains([]string{"inflight", "waiting", "starting", "delay", "host"}, o.sortBy) {
		return fmt.Errorf("%w: --sort %q", errUsage, o.sortBy)
	}
	if o.limit < 1 || o.limit > maxObserved || interval < 100*time.Millisecond {
		return fmt.Errorf("%w: -n between 1 and %d, --interval at least 100ms", errUsage, maxObserved)
	}
	if _, err := path.Match(o.pattern, ""); err != nil {
		return fmt.Errorf("%w: --host %q: %w", errUsage, o.pattern, err)
	}
	o.pattern = strings.ToLower(o.pattern)
	rdb, err := c.redis(ctx)
	if err != nil {
		return err
	}
	defer c.done()
	t := newTop(rdb, c.prefix)
	print := func(v topView) error {
		if c.output == "json" {
			return writeJSON(c.stdout, topReply{At: v.at.UTC().Format(time.RFC3339Nano), Hosts: v.rows})
		}
		return v.table(c.stdout, o)
	}
	if once {
		v, err := t.refresh(ctx, o)
		if err != nil {
			return err
		}
		return print(v)
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		v, err := t.refresh(ctx, o)
		if c.output == "table" {
			fmt.Fprint(c.stdout, "\x1b[H\x1b[2J") // home, clear
		}
		switch {
		case err != nil && ctx.Err() != nil:
			return nil
		case err != nil:
			fmt.Fprintf(c.stdout, "%s  refresh failed: %v\n", time.Now().Format(time.TimeOnly), err)
		default:
			if err := print(v); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

type top struct {
	obs    *semaphore.Observer
	active *semaphore.Active
}

func newTop(rdb redis.UniversalClient, prefix string) *top {
	return &top{obs: semaphore.NewObserver(rdb, semaphore.Options{Prefix: prefix}),
		active: semaphore.NewActive(rdb, semaphore.ActiveOptions{Prefix: prefix})}
}

// refresh reads one view: the sidecars' load reports rank the hosts, and the busiest (at most
// maxObserved) are read from the semaphore itself, which decides the numbers shown. Its Redis cost
// is bounded by the sidecars' reports and maxObserved, not by the number of active hosts.
func (t *top) refresh(ctx context.Context, o topOptions) (topView, error) {
	loads, sidecars, err := t.active.Loads(ctx, 0)
	if err != nil {
		return topView{}, err
	}
	active, err := t.active.Count(ctx)
	if err != nil {
		return topView{}, err
	}
	cands := make([]semaphore.Load, 0, len(loads))
	for k, l := range loads {
		if ok, _ := path.Match(o.pattern, k); o.pattern == "" || ok {
			cands = append(cands, l)
		}
	}
	ranked := len(cands)
	slices.SortFunc(cands, func(a, b semaphore.Load) int {
		return cmp.Or(cmp.Compare(b.InFlight+b.Starting, a.InFlight+a.Starting), cmp.Compare(b.Waiting, a.Waiting), cmp.Compare(a.Key, b.Key))
	})
	cands = cands[:min(len(cands), min(maxObserved, max(minObserved, observePerRow*o.limit)))]
	if exact := exactHost(o.pattern); exact != "" {
		if _, ok := loads[exact]; !ok {
			cands = append(cands, semaphore.Load{Key: exact})
		}
	}
	keys := make([]string, len(cands))
	for i, l := range cands {
		keys[i] = l.Key
	}
	obs, err := t.obs.Observe(ctx, keys)
	if err != nil {
		return topView{}, err
	}
	at := obs.At
	if at.IsZero() {
		at = time.Now()
	}
	v := topView{at: at, sidecars: sidecars, active: active, ranked: ranked}
	for i, h := range obs.Hosts {
		v.rows = append(v.rows, rowOf(h, cands[i], at))
	}
	sortRows(v.rows, o.sortBy)
	v.rows = v.rows[:min(len(v.rows), o.limit)]
	return v, nil
}

// exactHost is the pattern when it names one host (no wildcard), normalised; else "".
func exactHost(pattern string) string {
	if pattern == "" || strings.ContainsAny(pattern, "*?[\\") {
		return ""
	}
	h, p, err := policy.Normalize(pattern, "http")
	if err != nil {
		return ""
	}
	return policy.Key(h, p)
}

func rowOf(h semaphore.HostState, l semaphore.Load, at time.Time) topRow {
	r := topRow{Host: h.Key, InFlight: h.InFlight, Starting: h.Starting, Waiting: h.Waiting, Limit: h.Limit,
		Delay: h.Delay.String(), DelaySource: orUnknown(l.DelaySource), NextStartIn: h.NextStart.String(), Robots: orUnknown(l.Robots)}
	if h.Backoff > 0 {
		u := at.Add(h.Backoff).UTC().Format(time.RFC3339Nano)
		r.BackoffUntil = &u
		r.DelaySource = "backoff"
		r.Delay = max(h.Delay, h.Backoff).Round(time.Millisecond).String()
	}
	return r
}

func orUnknown(s string) string {
	if s == "" || s == "-" {
		return "unknown"
	}
	return s
}

func sortRows(rows []topRow, by string) {
	slices.SortStableFunc(rows, func(a, b topRow) int {
		busiest := cmp.Or(cmp.Compare(b.InFlight, a.InFlight), cmp.Compare(b.Waiting, a.Waiting), cmp.Compare(b.Starting, a.Starting))
		switch by {
		case "waiting":
			busiest = cmp.Or(cmp.Compare(b.Waiting, a.Waiting), busiest)
		case "starting":
			busiest = cmp.Or(cmp.Compare(b.Starting, a.Starting), busiest)
		case "delay":
			da, _ := time.ParseDuration(a.Delay)
			db, _ := time.ParseDuration(b.Delay)
			busiest = cmp.Or(cmp.Compare(db, da), busiest)
		case "host":
			busiest = 0
		}
		return cmp.Or(busiest, cmp.Compare(a.Host, b.Host))
	})
}

func (v topView) table(w io.Writer, o topOptions) error {
	filter := ""
	if o.pattern != "" {
		filter = "  host " + o.pattern
	}
	fmt.Fprintf(w, "crawlpolite top  %s  sidecars %d  active hosts %d  busy %d  sort %s%s\n\n",
		v.at.UTC().Format("15:04:05.000Z"), v.sidecars, v.active, v.ranked, o.sortBy, filter)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tIN FLIGHT\tSTARTING\tWAITING\tDELAY\tSOURCE\tNEXT START\tBACKOFF UNTIL\tROBOTS")
	for _, r := range v.rows {
		bo := "-"
		if r.BackoffUntil != nil {
			bo = *r.BackoffUntil
		}
		lim := "-"
		if r.Limit > 0 {
			lim = fmt.Sprint(r.Limit)
		}
		fmt.Fprintf(tw, "%s\t%d/%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", r.Host, r.InFlight, lim, r.Starting, r.Waiting,
			r.Delay, r.DelaySource, r.NextStartIn, bo, r.Robots)
	}
	if len(v.rows) == 0 {
		fmt.Fprintln(tw, "(no host has requests now)")
	}
	return tw.Flush()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
