package throttle

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/crawlpolite/crawlpolite/pkg/semaphore"
)

// breakerOpen is how long requests skip a Redis node after it failed. A failing Redis call takes
// go-redis's timeout and retry (about a second against a node that hangs); during an outage every
// request would pay that before its 503 or its fallback turn. One request probes again once the time
// is up.
const breakerOpen = time.Second

var errBackendDown = fmt.Errorf("%w: skipped while Redis recovers", semaphore.ErrUnavailable)

// breaker remembers until when one Redis node is considered down.
type breaker struct{ until atomic.Int64 }

func (b *breaker) open() bool {
	u := b.until.Load()
	if u == 0 {
		return false
	}
	if time.Now().UnixNano() < u {
		return true
	}
	// Time is up: let exactly one caller through to probe, the others keep skipping meanwhile.
	return !b.until.CompareAndSwap(u, time.Now().Add(breakerOpen).UnixNano())
}

func (b *breaker) trip() { b.until.Store(time.Now().Add(breakerOpen).UnixNano()) }

// reset closes the breaker after a call that got through.
func (b *breaker) reset() {
	if b.until.Load() != 0 {
		b.until.Store(0)
	}
}
