package redisurl

import "testing"

func TestSeedList(t *testing.T) {
	for in, want := range map[string]string{
		"a:6379":                                   "a:6379",
		"a:6379?addr=b:6379":                       "a:6379?addr=b:6379",
		"a:6379,b:6379":                            "a:6379?addr=b:6379",
		"a:6379,b:6379,c:6379/0":                   "a:6379/0?addr=b:6379&addr=c:6379",
		"user@a:6379, b:6379?read_timeout=1s":      "user@a:6379?read_timeout=1s&addr=b:6379",
		"s1:26379,s2:26379?master_name=m":          "s1:26379?master_name=m&addr=s2:26379",
		"u@a:1,b:2#x":                              "u@a:1?addr=b:2#x",
		"redis-0.redis.svc:6379,redis-1.redis.svc": "redis-0.redis.svc:6379?addr=redis-1.redis.svc",
	} {
		if got := SeedList(in); got != want {
			t.Errorf("SeedList(%q) = %q, want %q", in, got, want)
		}
	}
}
