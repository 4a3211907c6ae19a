package semaphore

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

//go:embed lua/publish.lua
var luaPublish string

var scriptPublish = redis.NewScript(luaPublish)

// ActiveOptions configure the registry of active keys. Zero values take the defaults.
type ActiveOptions struct {
	Prefix  string        // as Options.Prefix; default "crawlpolite"
	Window  time.Duration // a key stays listed this long after its last use; default 5m
	Max     int           // keys listed at most, the least recently used dropped first; default 250000
	LoadTTL time.Duration // a process's load report lives this long; default 5s
	MaxLoad int           // keys per load report at most (the busiest); default 256
}

func (o ActiveOptions) withDefaults() ActiveOptions {
	if o.Prefix == "" {
		o.Prefix = "crawlpolite"
	}
	if o.Window <= 0 {
		o.Window = 5 * time.Minute
	}
	if o.Max <= 0 {
		o.Max = 250000
	}
	if o.LoadTTL <= 0 {
		o.LoadTTL = 5 * time.Second
	}
	if o.MaxLoad <= 0 {
		o.MaxLoad = 256
	}
	return o
}

// Load is one process's view of one key: its own requests in each phase, and what it last saw of
// the key's delay and robots.txt. Observers rank keys by the sum of every process's load, then read
// the live truth of the busiest from Redis (Observe).
type Load struct {
	Key         string
	InFlight    int
	Starting    int
	Waiting     int
	DelaySource string // "policy" or "robots": what set the delay of this process's last request
	Robots      string // robots.txt status of this process's last request ("ok", "unavailable", ...)
}

// Busy is the requests of l in any phase.
func (l Load) Busy() int { return l.InFlight + l.Starting + l.Waiting }

// ActiveKey is a key listed in the registry with its last use on the Redis clock.
type ActiveKey struct {
	Key      string
	LastUsed time.Time
}

// Active is the registry of recently used keys and of every process's load: a few keys sharing one
// hash tag ("{active}"), written by each process about once a second (Publish, one script) and read
// by observers. It is off the request path: nothing there waits for it.
type Active struct {
	c    redis.Cmdable
	opts ActiveOptions
	keys []string // active, sidecars, and the prefix of load keys
}

// NewActive returns the registry under opts.Prefix.
func NewActive(c redis.Cmdable, opts ActiveOptions) *Active {
	opts = opts.withDefaults()
	p := opts.Prefix + ":{active}:"
	return &Active{c: c, opts: opts, keys: []string{p + "keys", p + "procs", p + "load:"}}
}

// MaxLoad is the most keys one load report carries.
func (a *Active) MaxLoad() int { return a.opts.MaxLoad }

// Publish records that process id used the keys in used since its last report, and replaces its
// load report with load (the first MaxLoad entries, which the caller orders busiest first). Values
// are written with the Redis clock. One round trip.
func (a *Active) Publish(ctx context.Context, id string, used []string, load []Load) error {
	if id == "" || strings.ContainsAny(id, " ") {
		return fmt.Errorf("%w: process id %q", ErrInvalid, id)
	}
	load = load[:min(len(load), a.opts.MaxLoad)]
	args := make([]any, 0, 5+len(used)+2*len(load))
	args = append(args, id, ms(a.opts.Window), a.opts.Max, ms(a.opts.LoadTTL), len(used))
	for _, k := range used {
		args = append(args, k)
	}
	for _, l := range load {
		args = append(args, l.Key, fmt.Sprintf("%d %d %d %s %s", l.InFlight, l.Starting, l.Waiting, word(l.DelaySource), word(l.Robots)))
	}
	if err := scriptPublish.Run(ctx, a.c, []string{a.keys[0], a.keys[1], a.keys[2] + id}, args...).Err(); err != nil {
		return fmt.Errorf("%w: publish active keys: %w", ErrUnavailable, err)
	}
	return nil
}

func word(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\n") {
		return "-"
	}
	return s
}

// Keys lists up to limit active keys, most recently used first.
func (a *Active) Keys(ctx context.Context, limit int) ([]ActiveKey, error) {
	if limit <= 0 {
		return nil, nil
	}
	zs, err := a.c.ZRevRangeWithScores(ctx, a.keys[0], 0, int64(limit-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("%w: active keys: %w", ErrUnavailable, err)
	}
	out := make([]ActiveKey, 0, len(zs))
	for _, z := range zs {
		k, _ := z.Member.(string)
		out = append(out, ActiveKey{Key: k, LastUsed: time.UnixMilli(int64(z.Score))})
	}
	return out, nil
}

// Count is how many keys the registry lists.
func (a *Active) Count(ctx context.Context) (int64, error) {
	n, err := a.c.ZCard(ctx, a.keys[0]).Result()
	if err != nil {
		return 0, fmt.Errorf("%w: active keys: %w", ErrUnavailable, err)
	}
	return n, nil
}

// Loads reads every live process's load report and sums them per key (the delay source and robots
// status of one of the reports). It costs two round trips and at most processes x MaxLoad entries,
// whatever the number of active keys. maxProcs bounds the processes read (0: 10000).
func (a *Active) Loads(ctx context.Context, maxProcs int) (map[string]Load, int, error) {
	if maxProcs <= 0 {
		maxProcs = 10000
	}
	ids, err := a.c.ZRevRange(ctx, a.keys[1], 0, int64(maxProcs-1)).Result()
	if err != nil {
		return nil, 0, fmt.Errorf("%w: processes: %w", ErrUnavailable, err)
	}
	out := map[string]Load{}
	if len(ids) == 0 {
		return out, 0, nil
	}
	cmds, err := a.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range ids {
			p.HGetAll(ctx, a.keys[2]+id)
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("%w: load reports: %w", ErrUnavailable, err)
	}
	live := 0
	for _, c := range cmds {
		m := c.(*redis.MapStringStringCmd).Val()
		if len(m) > 0 {
			live++
		}
		for k, v := range m {
			l, ok := parseLoad(k, v)
			if !ok {
				continue
			}
			sum := out[k]
			sum.Key = k
			sum.InFlight += l.InFlight
			sum.Starting += l.Starting
			sum.Waiting += l.Waiting
			if sum.DelaySource == "" || sum.DelaySource == "-" {
				sum.DelaySource = l.DelaySource
			}
			if sum.Robots == "" || sum.Robots == "-" {
				sum.Robots = l.Robots
			}
			out[k] = sum
		}
	}
	return out, live, nil
}

func parseLoad(key, v string) (Load, bool) {
	f := strings.Fields(v)
	if len(f) != 5 {
		return Load{}, false
	}
	var n [3]int
	for i := range n {
		x, err := strconv.Atoi(f[i])
		if err != nil || x < 0 {
			return Load{}, false
		}
		n[i] = x
	}
	return Load{Key: key, InFlight: n[0], Starting: n[1], Waiting: n[2], DelaySource: f[3], Robots: f[4]}, true
}
