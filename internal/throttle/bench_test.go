package throttle

import (
	"io"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/crawlpolite/crawlpolite/internal/policy"
	"github.com/crawlpolite/crawlpolite/internal/redistest"
	"github.com/crawlpolite/crawlpolite/pkg/semaphore"
)

// BenchmarkAdmitRedis: one request's politeness on a real redis-server (Admit, Wait, Sent,
// Release), robots.txt ignored, for hosts of a rule by each groupBy. "host" is the path of every
// request without groups, and must cost what it did before groups existed (run this file against
// the previous commit to compare: it uses no API groups added).
func BenchmarkAdmitRedis(b *testing.B) {
	srv := redistest.Start(b)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	b.Cleanup(func() { _ = c.Close() })
	for _, g := range []string{"host", "domain"} {
		b.Run(g, func(b *testing.B) {
			sem, err := semaphore.NewRedis(c, semaphore.Options{Prefix: "bench-" + g})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = sem.Close() })
			doc := "defaults:\n  maxConcurrency: 10000\n  minDelay: 0s\n  robots: ignore\n"
			if g != "host" {
				doc += "rules:\n  - hosts: [\"*.bench.test\"]\n    groupBy: " + g + "\n"
			}
			pol, err := policy.Parse([]byte(doc))
			if err != nil {
				b.Fatal(err)
			}
			thr, err := New(sem, nil, nil, pol, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
			if err != nil {
				b.Fatal(err)
			}
			ctx := b.Context()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					turn, err := thr.Admit(ctx, get("http://www.bench.test/page"))
					if err != nil {
						b.Error(err)
						return
					}
					if err := turn.Wait(ctx); err != nil {
						b.Error(err)
						return
					}
					turn.Sent()
					turn.Release()
				}
			})
			b.StopTimer()
			_ = thr.WaitReleases(ctx)
		})
	}
}
