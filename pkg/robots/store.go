package robots

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// Store is the cache that processes share (CacheOptions.Store), and the claim that lets one of
// them fetch a host's robots.txt while the others wait for its result. Values are opaque to the
// store: the Cache writes them in a versioned, compressed form of at most MaxStoredSize bytes and
// reads them back with bounds, so a store may hold them as it likes. A failing call makes the Cache
// behave for that lookup as if there were no store: it fetches the file itself.
//
// RedisStore is the implementation on Redis.
type Store interface {
	// Load returns the value saved for base ("scheme://host[:port]") and the time it has left to
	// live, or "" when there is none. A ttl of 0 or less means unknown.
	Load(ctx context.Context, base string) (value string, ttl time.Duration, err error)
	// Save stores value for base for ttl.
	Save(ctx context.Context, base, value string, ttl time.Duration) error
	// Claim takes base's fetch claim for d, unless another is held: it reports whether this call
	// took it.
	Claim(ctx context.Context, base string, d time.Duration) (bool, error)
	// Unclaim drops base's claim, taken by Claim.
	Unclaim(ctx context.Context, base string) error
}

// MaxStoredSize bounds a value in a Store: the Cache saves no larger one and ignores one that is.
const MaxStoredSize = 4 << 20

// RedisClient is what RedisStore needs of go-redis; *redis.Client, *redis.ClusterClient and
// redis.UniversalClient satisfy it.
type RedisClient interface {
	GetRange(ctx context.Context, key string, start, end int64) *redis.StringCmd
	PTTL(ctx context.Context, key string) *redis.DurationCmd
	Set(ctx context.Context, key string, value any, expiration time.Duration) *redis.StatusCmd
	SetNX(ctx context.Context, key string, value any, expiration time.Duration) *redis.BoolCmd
	Del(ctx context.Context, keys ...string) *redis.IntCmd
}

var (
	_ RedisClient = (*redis.Client)(nil)
	_ RedisClient = (*redis.ClusterClient)(nil)
	_ Store       = (*RedisStore)(nil)
)

// RedisStore is a Store on Redis: base's value under "PREFIX:{base}" with the value's TTL, its claim
// under "PREFIX:{base}:claim" taken with SET NX PX. The two share a hash tag, so they live on one
// Redis Cluster node. Reading a value costs at most MaxStoredSize bytes, whatever Redis holds.
type RedisStore struct {
	c      RedisClient
	prefix string
}

// NewRedisStore returns the store on c under prefix ("crawlpolite:robots" when empty).
func NewRedisStore(c RedisClient, prefix string) *RedisStore {
	if prefix == "" {
		prefix = "crawlpolite:robots"
	}
	return &RedisStore{c: c, prefix: prefix}
}

func (s *RedisStore) key(base string) string { return s.prefix + ":{" + base + "}" }

// Load reads base's value (GETRANGE, so at most MaxStoredSize bytes) and its TTL (PTTL).
func (s *RedisStore) Load(ctx context.Context, base string) (string, time.Duration, error) {
	key := s.key(base)
	v, err := s.c.GetRange(ctx, key, 0, MaxStoredSize-1).Result()
	if err != nil || v == "" { // GETRANGE of a missing key is ""
		return "", 0, err
	}
	ttl, err := s.c.PTTL(ctx, key).Result()
	if err != nil {
		ttl = 0 // unknown; the value is still good
	}
	return v, ttl, nil
}

// Save sets base's value with ttl.
func (s *RedisStore) Save(ctx context.Context, base, value string, ttl time.Duration) error {
	return s.c.Set(ctx, s.key(base), value, ttl).Err()
}

// Claim sets base's claim with SET NX PX d.
func (s *RedisStore) Claim(ctx context.Context, base string, d time.Duration) (bool, error) {
	return s.c.SetNX(ctx, s.key(base)+":claim", "1", d).Result()
}

// Unclaim deletes base's claim.
func (s *RedisStore) Unclaim(ctx context.Context, base string) error {
	return s.c.Del(ctx, s.key(base)+":claim").Err()
}
