package throttle

import (
	"fmt"
	"testing"
)

// BenchmarkHostsCounting is what the per-host counts add to one request: the four updates of its
// phases (waiting, granted, started, released), from parallel requests over 1000 hosts.
func BenchmarkHostsCounting(b *testing.B) {
	h := NewHosts()
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("h%d.example", i)
	}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			k := keys[i%len(keys)]
			i++
			h.waiting(k, "policy")(true)
			h.started(k)
			h.released(k, true)
		}
	})
}
