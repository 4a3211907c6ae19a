package robots_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crawlpolite/crawlpolite/pkg/robots"
)

func ExampleParse() {
	rules := robots.Parse([]byte(`# comments and unknown lines are skipped
User-agent: *
Disallow: /

User-agent: MyBot
Disallow: /private
Crawl-delay: 2
`))
	// A crawler is matched by its product token, case-insensitively; others get the * group.
	mine := rules.For(robots.ProductToken("MyBot/1.0 (+https://example.com/bot)"))
	fmt.Println(mine.Allowed("/public"), mine.Allowed("/private/x"), mine.CrawlDelay())
	other := rules.For("otherbot")
	fmt.Println(other.Allowed("/public"), other.Allowed("/robots.txt"))
	// Output:
	// true false 2s
	// false true
}

func ExampleGroup_Check() {
	rules := robots.Parse([]byte("User-agent: *\nDisallow: /private\nAllow: /private/ok$\nCrawl-delay: 1.5\n"))
	g := rules.For(robots.ProductToken("mybot/1.0"))
	for _, path := range []string{"/private/x", "/private/ok", "/public"} {
		v := g.Check(path)
		fmt.Printf("%s allowed=%v exhausted=%v rule=%q\n", path, v.Allowed, v.Exhausted, v.Rule())
	}
	fmt.Println("delay", g.CrawlDelay())
	// Output:
	// /private/x allowed=false exhausted=false rule="disallow: /private"
	// /private/ok allowed=true exhausted=false rule="allow: /private/ok$"
	// /public allowed=true exhausted=false rule=""
	// delay 1.5s
}

// Fetch applies RFC 9309's status codes: a 4xx allows everything, a 5xx disallows everything.
func ExampleFetcher_Fetch() {
	for _, code := range []int{http.StatusOK, http.StatusNotFound, http.StatusServiceUnavailable} {
		site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Cache-Control", "max-age=7200")
			w.WriteHeader(code)
			fmt.Fprint(w, "User-agent: *\nDisallow: /private\n")
		}))
		var f robots.Fetcher // the zero value is usable
		res := f.Fetch(context.Background(), site.URL)
		fmt.Printf("%d: %v, /private allowed %v, /public allowed %v\n",
			code, res.Status, res.For("mybot").Allowed("/private"), res.For("mybot").Allowed("/public"))
		site.Close()
	}
	// Output:
	// 200: fetched, /private allowed false, /public allowed true
	// 404: unavailable, /private allowed true, /public allowed true
	// 503: unreachable, /private allowed false, /public allowed false
}

// A Cache fetches each host's robots.txt once per TTL, however many callers ask.
func ExampleCache() {
	var fetches atomic.Int32
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		fmt.Fprint(w, "User-agent: *\nDisallow: /private\nCrawl-delay: 0.5\n")
	}))
	defer site.Close()
	cache := robots.NewCache(&robots.Fetcher{UserAgent: "mybot/1.0"}, robots.CacheOptions{})
	ctx := context.Background()
	for range 3 {
		res := cache.Get(ctx, site.URL) // "scheme://host[:port]"
		g := res.For("mybot")
		fmt.Println(res.Status, g.Allowed("/private/x"), g.CrawlDelay())
	}
	fmt.Println("fetches:", fetches.Load())
	// Output:
	// fetched false 500ms
	// fetched false 500ms
	// fetched false 500ms
	// fetches: 1
}

// memStore is a Store in this process's memory: what a test, or a single process with several
// caches, might use. Expired values and claims are simply ignored.
type memStore struct {
	mu     sync.Mutex
	values map[string]memValue
	claims map[string]time.Time
}

type memValue struct {
	v       string
	expires time.Time
}

func (m *memStore) Load(_ context.Context, base string) (string, time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.values[base]; ok && time.Now().Before(e.expires) {
		return e.v, time.Until(e.expires), nil
	}
	return "", 0, nil
}

func (m *memStore) Save(_ context.Context, base, v string, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.values[base] = memValue{v, time.Now().Add(ttl)}
	return nil
}

func (m *memStore) Claim(_ context.Context, base string, d time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if time.Now().Before(m.claims[base]) {
		return false, nil
	}
	m.claims[base] = time.Now().Add(d)
	return true, nil
}

func (m *memStore) Unclaim(_ context.Context, base string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.claims, base)
	return nil
}

// Caches sharing a Store fetch each host's file once between them; the others read it back.
func ExampleStore() {
	var fetches atomic.Int32
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		fmt.Fprint(w, "User-agent: *\nDisallow: /private\n")
	}))
	defer site.Close()
	store := &memStore{values: map[string]memValue{}, claims: map[string]time.Time{}}
	first := robots.NewCache(nil, robots.CacheOptions{Store: store})
	second := robots.NewCache(nil, robots.CacheOptions{Store: store})
	ctx := context.Background()
	fmt.Println(first.Get(ctx, site.URL).For("mybot").Allowed("/private"))
	fmt.Println(second.Get(ctx, site.URL).For("mybot").Allowed("/private"))
	fmt.Println("fetches:", fetches.Load())
	// Output:
	// false
	// false
	// fetches: 1
}

// RedisStore shares the cache between processes through Redis (one server, Sentinel or Cluster).
func ExampleNewRedisStore() {
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()
	cache := robots.NewCache(&robots.Fetcher{UserAgent: "mybot/1.0"},
		robots.CacheOptions{Store: robots.NewRedisStore(rdb, "mycrawler:robots")})
	res := cache.Get(context.Background(), "https://example.com")
	if res.Status == robots.Unreachable {
		log.Println("robots.txt unreachable, so everything is disallowed:", res.Err)
	}
}
