package semaphore_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crawlpolite/crawlpolite/pkg/semaphore"
)

// Two turns on one key with a concurrency of 1 and a delay of 50ms: the second is granted once the
// first is released, and may start no sooner than 50ms after the first actually started.
func Example() {
	sem, err := semaphore.NewLocal(semaphore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer sem.Close()
	ctx := context.Background()
	lim := semaphore.Limits{Concurrency: 1, Delay: 50 * time.Millisecond}

	var prev time.Time
	for i := range 2 {
		lease, err := sem.Acquire(ctx, "example.com", lim)
		if err != nil {
			log.Fatal(err)
		}
		if err := lease.Wait(ctx); err != nil { // sleep until the lease's start
			log.Fatal(err)
		}
		began := time.Now()
		lease.Started(began) // the work (a request) begins now
		if i > 0 {
			fmt.Println("gap at least the delay:", began.Sub(prev) >= lim.Delay)
		}
		prev = began
		fmt.Println("token", lease.Token(), "on", lease.Key())
		if err := lease.Release(ctx); err != nil {
			log.Fatal(err)
		}
	}
	// Output:
	// token 1 on example.com
	// gap at least the delay: true
	// token 2 on example.com
}

// A newcomer waits behind the holder and is granted the slot when it is released.
func ExampleSemaphore_Acquire() {
	sem, err := semaphore.NewLocal(semaphore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer sem.Close()
	ctx := context.Background()
	lim := semaphore.Limits{Concurrency: 1}

	holder, err := sem.Acquire(ctx, "example.com", lim)
	if err != nil {
		log.Fatal(err)
	}
	granted := make(chan *semaphore.Lease)
	go func() {
		l, err := sem.Acquire(ctx, "example.com", lim)
		if err != nil {
			log.Fatal(err)
		}
		granted <- l
	}()
	for st, _ := sem.State(ctx, "example.com"); st.Waiters == 0; st, _ = sem.State(ctx, "example.com") {
		time.Sleep(time.Millisecond) // until the newcomer is queued
	}
	st, _ := sem.State(ctx, "example.com")
	fmt.Printf("holders %d, waiters %d\n", st.Holders, st.Waiters)

	_ = holder.Release(ctx)
	next := <-granted
	fmt.Println("granted after the release, token", next.Token())
	_ = next.Release(ctx)

	// A caller that may not wait gives up with its context: it leaves the queue.
	holder, _ = sem.Acquire(ctx, "example.com", lim)
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	_, err = sem.Acquire(short, "example.com", lim)
	fmt.Println("gave up:", errors.Is(err, context.DeadlineExceeded))
	_ = holder.Release(ctx)
	// Output:
	// holders 1, waiters 1
	// granted after the release, token 2
	// gave up: true
}

// Backoff pushes the key's next start later for every holder (an upstream's 429 or 503).
func ExampleSemaphore_Backoff() {
	sem, err := semaphore.NewLocal(semaphore.Options{BackoffBase: time.Second, MaxBackoff: time.Minute})
	if err != nil {
		log.Fatal(err)
	}
	defer sem.Close()
	ctx := context.Background()

	d, _ := sem.Backoff(ctx, "example.com", 0) // no Retry-After: exponential
	fmt.Println("first backoff", d)
	d, _ = sem.Backoff(ctx, "example.com", 0)
	fmt.Println("second backoff", d)
	d, _ = sem.Backoff(ctx, "example.com", 30*time.Second) // Retry-After: 30
	fmt.Println("with Retry-After", d)

	lease, err := sem.Acquire(ctx, "example.com", semaphore.Limits{Concurrency: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = lease.Release(ctx) }()
	fmt.Println("start at least 25s away:", time.Until(lease.Start()) > 25*time.Second)
	// Output:
	// first backoff 1s
	// second backoff 2s
	// with Retry-After 30s
	// start at least 25s away: true
}

// The Redis backend shares every key with every process using the same Redis and Options.Prefix:
// a *redis.Client (one server or Sentinel) or a *redis.ClusterClient.
func ExampleNewRedis() {
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()
	sem, err := semaphore.NewRedis(rdb, semaphore.Options{Prefix: "mycrawler"})
	if err != nil {
		log.Fatal(err)
	}
	defer sem.Close()
	ctx := context.Background()

	lease, err := sem.Acquire(ctx, "example.com", semaphore.Limits{Concurrency: 2, Delay: time.Second})
	if errors.Is(err, semaphore.ErrUnavailable) {
		log.Fatal("redis is down: ", err)
	} else if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = lease.Release(ctx) }()
	if err := lease.Wait(ctx); err != nil {
		log.Fatal(err)
	}
	lease.Started(time.Now())
	// ... do the work; stop if lease.Lost() is closed
}
