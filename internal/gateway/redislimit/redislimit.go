// Package redislimit is the fleet-wide limit that several taxi-gateway
// replicas share through Redis: GCRA (go-redis/redis_rate) and a common
// memory of delivered punches.
package redislimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"taxi-agent/internal/gateway"
)

// Redis keys shared by the replicas of one fleet.
const (
	redisRateKey    = "taxi-gateway:punch" // redis_rate prefixes "rate:"
	redisDeliveredP = "taxi-gateway:delivered:"
)

// Limiter is the fleet-wide rate shared by every replica that points
// at the same Redis: GCRA (go-redis/redis_rate, one atomic script on
// Redis's own clock) with a burst of one, so that punches leave the whole
// set of replicas at least one emission interval apart. It also keeps the
// replicas' memory of delivered punches, so that a retry that reaches
// another replica is not a second punch either.
type Limiter struct {
	rdb   *redis.Client
	lim   *redis_rate.Limiter
	limit redis_rate.Limit
}

var _ gateway.SharedLimiter = (*Limiter)(nil)

// New connects to url (redis://, rediss:// or unix://) for a
// limit of perSecond punches a second, held within any window of one
// second plus jitter (see gateway.Limit.Jitter): the emission interval is
// (1 s + jitter)/⌊perSecond⌋. It does not dial until used.
func New(url string, perSecond float64, jitter time.Duration) (*Limiter, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("parse limit.redis_url: %w", err)
	}
	rdb := redis.NewClient(opt)
	return &Limiter{rdb: rdb, lim: redis_rate.NewLimiter(rdb), limit: gcraLimit(perSecond, jitter)}, nil
}

// gcraLimit is the limit as redis_rate's integer rate per period, burst 1:
// ⌊perSecond⌋ (at least 1) per n/perSecond + jitter.
func gcraLimit(perSecond float64, jitter time.Duration) redis_rate.Limit {
	n := max(1, int(math.Floor(perSecond)))
	return redis_rate.Limit{Rate: n, Period: time.Duration(float64(n)/perSecond*float64(time.Second)) + jitter, Burst: 1}
}

// Wait takes one slot of the shared limit, sleeping the retry-after Redis
// gives until it gets one. An unreachable Redis is retried every second:
// without it no replica may send, or the limit would not hold.
func (r *Limiter) Wait(ctx context.Context) error {
	for {
		res, err := r.lim.Allow(ctx, redisRateKey, r.limit)
		var wait time.Duration
		switch {
		case err != nil && ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			wait = time.Second
		case res.Allowed > 0:
			return nil
		default:
			wait = max(res.RetryAfter, time.Millisecond)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Ping checks that Redis answers.
func (r *Limiter) Ping(ctx context.Context) error {
	if err := r.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis: %w", err)
	}
	return nil
}

// Delivered reports whether any replica delivered k within gateway.DedupWindow.
func (r *Limiter) Delivered(ctx context.Context, k gateway.PunchKey) (bool, error) {
	err := r.rdb.Get(ctx, deliveredKey(k)).Err()
	switch {
	case errors.Is(err, redis.Nil):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read delivered punch: %w", err)
	}
	return true, nil
}

// MarkDelivered records k as delivered for gateway.DedupWindow.
func (r *Limiter) MarkDelivered(ctx context.Context, k gateway.PunchKey) error {
	if err := r.rdb.Set(ctx, deliveredKey(k), 1, gateway.DedupWindow).Err(); err != nil {
		return fmt.Errorf("record delivered punch: %w", err)
	}
	return nil
}

// Close closes the connections.
func (r *Limiter) Close() error { return r.rdb.Close() }

// deliveredKey names k in Redis by a hash: no licence in clear in Redis.
func deliveredKey(k gateway.PunchKey) string {
	h := sha256.Sum256([]byte(k.Plate + "\x00" + k.Licence + "\x00" + k.Type + "\x00" + k.Time))
	return redisDeliveredP + hex.EncodeToString(h[:16])
}
