package throttle

import (
	"cmp"
	"context"
	"path"
	"slices"
	"sync"
	"time"

	"github.com/crawlpolite/crawlpolite/internal/policy"
	"github.com/crawlpolite/crawlpolite/pkg/semaphore"
)

// Hosts counts this process's requests per key in each phase: waiting for a slot, granted and
// waiting for their start (the delay gate), and in flight at the origin. It is memory only, updated
// under one mutex on the request path (no I/O), and holds only keys with requests now or since the
// last Report, so its size follows the requests, not the hosts ever seen.
type Hosts struct {
	mu   sync.Mutex
	m    map[string]*hostCount
	used map[string]struct{} // keys that took a turn since the last Report
}

type hostCount struct {
	inFlight, starting, waiting int
	delaySource, robots         string
}

func (c *hostCount) idle() bool { return c.inFlight == 0 && c.starting == 0 && c.waiting == 0 }

// NewHosts returns an empty count.
func NewHosts() *Hosts {
	return &Hosts{m: map[string]*hostCount{}, used: map[string]struct{}{}}
}

func (h *Hosts) get(key string) *hostCount {
	c := h.m[key]
	if c == nil {
		c = &hostCount{}
		h.m[key] = c
	}
	return c
}

// update applies f to key's count under the lock.
func (h *Hosts) update(key string, f func(*hostCount)) {
	h.mu.Lock()
	f(h.get(key))
	h.used[key] = struct{}{}
	h.mu.Unlock()
}

func (h *Hosts) robots(key, status string) { h.update(key, func(c *hostCount) { c.robots = status }) }

// waiting counts a request asking for a turn until done is called with whether it got one (then
// it is starting).
func (h *Hosts) waiting(key, delaySource string) (done func(granted bool)) {
	h.update(key, func(c *hostCount) { c.waiting++; c.delaySource = delaySource })
	return func(granted bool) {
		h.update(key, func(c *hostCount) {
			c.waiting--
			if granted {
				c.starting++
			}
		})
	}
}

func (h *Hosts) started(key string) {
	h.update(key, func(c *hostCount) { c.starting--; c.inFlight++ })
}

func (h *Hosts) released(key string, started bool) {
	h.update(key, func(c *hostCount) {
		if started {
			c.inFlight--
		} else {
			c.starting--
		}
	})
}

// Of is key's load in this process now (zero when it has no requests).
func (h *Hosts) Of(key string) semaphore.Load {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c, ok := h.m[key]; ok {
		return c.load(key)
	}
	return semaphore.Load{Key: key}
}

// Report returns the keys used since the last Report and the load of every key with requests now,
// busiest first, at most max of them; keys left idle are forgotten.
func (h *Hosts) Report(max int) (used []string, load []semaphore.Load) {
	h.mu.Lock()
	used = make([]string, 0, len(h.used))
	for k := range h.used {
		used = append(used, k)
	}
	clear(h.used)
	for k, c := range h.m {
		if c.idle() {
			delete(h.m, k)
			continue
		}
		load = append(load, c.load(k))
	}
	h.mu.Unlock()
	sortLoad(load)
	return used, load[:min(len(load), max)]
}

// Snapshot returns the load of the keys with requests now whose name matches pattern (path.Match;
// "" for all), busiest first, at most max of them, and how many matched in all.
func (h *Hosts) Snapshot(pattern string, max int) (load []semaphore.Load, matched int) {
	h.mu.Lock()
	for k, c := range h.m {
		if c.idle() {
			continue
		}
		if ok, _ := path.Match(pattern, k); pattern != "" && !ok {
			continue
		}
		load = append(load, c.load(k))
	}
	h.mu.Unlock()
	sortLoad(load)
	return load[:min(len(load), max)], len(load)
}

func (c *hostCount) load(k string) semaphore.Load {
	return semaphore.Load{Key: k, InFlight: c.inFlight, Starting: c.starting, Waiting: c.waiting,
		DelaySource: c.delaySource, Robots: c.robots}
}

// sortLoad orders by in flight, then waiting, then starting, busiest first; then by key.
func sortLoad(l []semaphore.Load) {
	slices.SortFunc(l, func(a, b semaphore.Load) int {
		return cmp.Or(cmp.Compare(b.InFlight, a.InFlight), cmp.Compare(b.Waiting, a.Waiting),
			cmp.Compare(b.Starting, a.Starting), cmp.Compare(a.Key, b.Key))
	})
}

// Key is the semaphore key of an authority as State reads it ("example.com", "example.com:80",
// "example.com:8443"): the host's own key, or its group's ("domain:example.com", "ip:192.0.2.1")
// when its rule groups by domain or IP; a group by IP resolves the name as Admit does.
func (t *Throttle) Key(ctx context.Context, authority string) (string, error) {
	_, key, err := t.keys(ctx, authority)
	return key, err
}

// keys are an authority's host key and its group's key (the same for groupBy: host).
func (t *Throttle) keys(ctx context.Context, authority string) (hostKey, key string, err error) {
	o, err := policy.ParseKey(authority)
	if err != nil {
		return "", "", err
	}
	key, _, err = t.group(ctx, t.policy.Load().For(o.Host, o.Port).GroupBy, o)
	return o.Key(), key, err
}

// delaySource names what set a request's delay: the robots.txt Crawl-delay (as capped) when it is
// above the policy's minimum, else the policy.
func delaySource(minDelay, crawlDelay, maxCrawlDelay time.Duration) string {
	if min(crawlDelay, maxCrawlDelay) > minDelay {
		return "robots"
	}
	return "policy"
}

// robotsWord is the robots.txt status as top shows it: "ok" for a fetched file whose rules apply.
func robotsWord(status string) string {
	if status == "fetched" {
		return "ok"
	}
	return status
}
