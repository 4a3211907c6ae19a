package robots

import (
	"bytes"
	"compress/flate"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crawlpolite/crawlpolite/internal/redistest"
)

// storeBodies are files whose shared form used to differ from what the fetching pod decided: the
// issue's 307 KB non-ASCII file whose `User-agent: *` / `Disallow: /` group comes last (the v1 text,
// %XX-encoded, was three times longer and cut at MaxSize), a near-limit 500 KiB file of mixed rules,
// stray '%' and odd delays, and a small one.
func storeBodies() map[string]string {
	var wide strings.Builder
	for i := 0; wide.Len() < 307_000; i++ {
		fmt.Fprintf(&wide, "User-agent: bot%c\nDisallow: /%s/%d\n\n", 'a'+i%26, strings.Repeat("日本語", 6), i)
	}
	wide.WriteString("User-agent: *\nDisallow: /\n")
	rng := rand.New(rand.NewPCG(3, 4))
	var mixed strings.Builder
	words := []string{"a", "é", "%", "%41", "%2a", "*", "$", "/", "?q=", "ü", "%zz", "%4%41", "-"}
	for mixed.Len() < 500<<10 {
		switch rng.IntN(12) {
		case 0:
			fmt.Fprintf(&mixed, "User-agent: %s\n", []string{"*", "bot", "Other", "BOT/2"}[rng.IntN(4)])
		case 1:
			fmt.Fprintf(&mixed, "Crawl-delay: %d.%03d\n", rng.IntN(9), rng.IntN(1000))
		default:
			var p strings.Builder
			for range rng.IntN(6) + 1 {
				p.WriteString(words[rng.IntN(len(words))])
			}
			fmt.Fprintf(&mixed, "%s: /%s\n", []string{"Allow", "Disallow"}[rng.IntN(2)], p.String())
		}
	}
	return map[string]string{
		"nonascii-307KB": wide.String(),
		"mixed-500KiB":   mixed.String(),
		"small":          "User-agent: *\nDisallow: /private\nAllow: /private/ok$\nCrawl-delay: 1.001\n",
	}
}

// storePaths are the paths both pods are asked about.
func storePaths() []string {
	rng := rand.New(rand.NewPCG(5, 6))
	paths := []string{"/", "/secret", "/private", "/private/ok", "/" + strings.Repeat("日本語", 6) + "/5"}
	parts := []string{"a", "é", "%", "%41", "%2A", "A", "/", "?q=", "ü", "%zz", "J", "-", "日本語", "bot"}
	for range 2000 {
		var p strings.Builder
		p.WriteString("/")
		for range rng.IntN(6) {
			p.WriteString(parts[rng.IntN(len(parts))])
		}
		paths = append(paths, p.String())
	}
	return paths
}

// TestStoreAgrees: a pod that fetched a robots.txt and a pod that read it from a real redis-server
// give the same verdict and delay for every path and agent.
func TestStoreAgrees(t *testing.T) {
	rs := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: rs.Addr})
	defer client.Close()
	paths := storePaths()
	for name, body := range storeBodies() {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(serve(200, body, ""))
			defer srv.Close()
			var strayFetches atomic.Int32
			elsewhere := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { strayFetches.Add(1) }))
			defer elsewhere.Close()
			prefix := fmt.Sprintf("robots-store-%d", time.Now().UnixNano())
			fetching := NewCache(&Fetcher{Client: srv.Client()}, CacheOptions{Store: NewRedisStore(client, prefix)})
			reading := NewCache(&Fetcher{Client: elsewhere.Client()}, CacheOptions{Store: NewRedisStore(client, prefix)})
			a := fetching.Get(t.Context(), srv.URL)
			b := reading.Get(t.Context(), srv.URL)
			if a.Status != Fetched || b.Status != Fetched {
				t.Fatalf("fetching pod %v (%v), reading pod %v (%v)", a.Status, a.Err, b.Status, b.Err)
			}
			differ := 0
			for _, agent := range []string{"bot", "bota", "other", "nobody"} {
				ga, gb := a.For(agent), b.For(agent)
				if ga.CrawlDelay() != gb.CrawlDelay() {
					t.Errorf("%s: delay %v fetched, %v from Redis", agent, ga.CrawlDelay(), gb.CrawlDelay())
				}
				for _, p := range paths {
					if va, vb := ga.Check(p), gb.Check(p); va != vb {
						if differ++; differ < 5 {
							t.Errorf("%s %q: %+v fetched, %+v from Redis", agent, p, va, vb)
						}
					}
				}
			}
			if differ > 0 {
				t.Fatalf("%d verdicts differ", differ)
			}
			if !strings.HasSuffix(name, "KB") {
				return
			}
			if a.For("nobody").Allowed("/secret") {
				t.Fatal("the final * group was lost before either pod decided")
			}
		})
	}
}

// TestDecodeBounds: a hostile value in Redis (a deflate bomb, a value larger than any encoding, an
// old or garbled head) is refused without holding more than the bounds, and the pod fetches itself.
func TestDecodeBounds(t *testing.T) {
	var bomb bytes.Buffer
	bomb.WriteString("v2 0 200\n")
	w, _ := flate.NewWriter(&bomb, flate.BestCompression)
	line := []byte("disallow: /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n")
	for range (256 << 20) / len(line) {
		_, _ = w.Write(line)
	}
	_ = w.Close()
	if bomb.Len() > 2<<20 {
		t.Fatalf("bomb of %d bytes", bomb.Len())
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	if _, err := decode(bomb.String()); err == nil {
		t.Fatal("a 256 MiB deflate bomb decoded")
	}
	runtime.ReadMemStats(&ms)
	if alloc := ms.TotalAlloc - before; alloc > 32<<20 {
		t.Fatalf("decoding the bomb allocated %d MiB", alloc>>20)
	}
	for name, v := range map[string]string{
		"v1":            "v1 1 404\n",
		"no newline":    "v2 0 200",
		"bad status":    "v2 7 200\n",
		"bad code":      "v2 1 -4\n",
		"body w/o file": "v2 1 404\nxx",
		"not deflate":   "v2 0 200\nUser-agent: *\nDisallow: /\n",
		"huge":          "v2 0 200\n" + strings.Repeat("x", maxEncoded),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := decode(v); err == nil {
				t.Error("decoded")
			}
		})
	}

	rs := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: rs.Addr})
	defer client.Close()
	srv, hits := origin(t, 200, 0)
	prefix := fmt.Sprintf("robots-bounds-%d", time.Now().UnixNano())
	key := prefix + ":{" + srv.URL + "}"
	huge := "v2 0 200\n" + strings.Repeat("x", 16<<20)
	if err := client.Set(t.Context(), key, huge, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&ms)
	before = ms.TotalAlloc
	c := NewCache(&Fetcher{Client: srv.Client()}, CacheOptions{Store: NewRedisStore(client, prefix)})
	if r := c.Get(t.Context(), srv.URL); r.Status != Fetched || r.For("x").Allowed("/private") {
		t.Fatalf("got %v (%v)", r.Status, r.Err)
	}
	runtime.ReadMemStats(&ms)
	if alloc := ms.TotalAlloc - before; alloc > 12<<20 {
		t.Errorf("reading a 16 MiB value allocated %d MiB", alloc>>20)
	}
	if hits.Load() != 1 {
		t.Errorf("origin fetched %d times, want 1 (the hostile value ignored)", hits.Load())
	}
}

// TestNormaliseIdempotent: normal form is a fixed point, so the patterns the shared cache stores
// in normal form are read back unchanged.
func TestNormaliseIdempotent(t *testing.T) {
	cases := []string{"%4%41", "%%41", "%", "%2", "%2a%2A", "%7e", "%7E", "%e6%97%A5", "日本", "a b", "%25", "%%", "%4%4%41", "/%zz%"}
	rng := rand.New(rand.NewPCG(7, 8))
	const alphabet = "%%%0124aAeEfFgG7~ é*$"
	for range 20000 {
		var b strings.Builder
		for range rng.IntN(10) {
			b.WriteByte(alphabet[rng.IntN(len(alphabet))])
		}
		cases = append(cases, b.String())
	}
	for _, s := range cases {
		once := normalise(s)
		if twice := normalise(once); twice != once {
			t.Fatalf("normalise(%q) = %q, again %q", s, once, twice)
		}
	}
}
