// Package redisurl holds what the sidecar and the CLI share about their --redis URLs.
package redisurl

import "strings"

// SeedList turns the comma-separated host list people write for a Redis Cluster or a set of
// Sentinels (redis+cluster://a:6379,b:6379/...) into go-redis's form: the first host as the URL's,
// every other one an addr query parameter. rest is the URL after "scheme://"; a rest with one host
// is returned as it is.
func SeedList(rest string) string {
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	user, hosts := "", authority
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		user, hosts = authority[:i+1], authority[i+1:]
	}
	list := strings.Split(hosts, ",")
	if len(list) < 2 {
		return rest
	}
	var extra []string
	for _, h := range list[1:] {
		if h = strings.TrimSpace(h); h != "" {
			extra = append(extra, "addr="+h)
		}
	}
	path, query, frag := tail, "", ""
	if i := strings.IndexByte(path, '#'); i >= 0 {
		path, frag = path[:i], path[i:]
	}
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path, query = path[:i], path[i+1:]
	}
	if query != "" {
		extra = append([]string{query}, extra...)
	}
	return user + strings.TrimSpace(list[0]) + path + "?" + strings.Join(extra, "&") + frag
}
