package semaphore_test

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// riaSemaphore is the fair semaphore of Redis in Action, section 6.3.2 (acquire_fair_semaphore and
// release_fair_semaphore), the baseline of the benchmarks. It ranks by client clocks and by a
// counter incremented in one round trip and checked in the next; a refused caller polls.
type riaSemaphore struct {
	c       redis.UniversalClient
	limit   int64
	timeout time.Duration
}

func (r *riaSemaphore) tryAcquire(ctx context.Context, sem, id string) (bool, error) {
	now := float64(time.Now().UnixNano()) / 1e9
	owner, ctr := sem+":owner", sem+":counter"
	var incr *redis.IntCmd
	if _, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRemRangeByScore(ctx, sem, "-inf", strconv.FormatFloat(now-r.timeout.Seconds(), 'f', -1, 64))
		p.ZInterStore(ctx, owner, &redis.ZStore{Keys: []string{owner, sem}, Weights: []float64{1, 0}})
		incr = p.Incr(ctx, ctr)
		return nil
	}); err != nil {
		return false, err
	}
	var rank *redis.IntCmd
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, sem, redis.Z{Score: now, Member: id})
		p.ZAdd(ctx, owner, redis.Z{Score: float64(incr.Val()), Member: id})
		rank = p.ZRank(ctx, owner, id)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, err
	}
	if err == nil && rank.Val() < r.limit {
		return true, nil
	}
	return false, r.release(ctx, sem, id)
}

func (r *riaSemaphore) release(ctx context.Context, sem, id string) error {
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, sem, id)
		p.ZRem(ctx, sem+":owner", id)
		return nil
	})
	return err
}

// acquire polls tryAcquire every poll until it succeeds.
func (r *riaSemaphore) acquire(ctx context.Context, sem, id string, poll time.Duration) error {
	for {
		ok, err := r.tryAcquire(ctx, sem, id)
		if err != nil || ok {
			return err
		}
		select {
		case <-time.After(poll):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
