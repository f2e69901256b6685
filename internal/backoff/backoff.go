// Package backoff is the agent's one retry schedule: capped exponential
// backoff with jitter, for every loop that tries again after a failure
// (the meter port, the uploader's deliveries, outbox and certificate
// retries).
//
// The ceiling of retry n (n ≥ 1) is Min·2^(n−1), capped at Max. The wait is
// drawn uniformly below the ceiling, so that a fleet of terminals that
// failed at the same instant does not come back in step. Floor keeps a part
// of each wait fixed: 0 is "full jitter", a wait in (0, ceiling]; 0.5 is
// "equal jitter", in (ceiling/2, ceiling], for a loop whose wait must never
// collapse to nothing. A wait is never zero.
//
// Policy.Delay is the pure formula, for callers that keep the attempt count
// themselves (the uploader persists it with each record). Backoff counts
// attempts, draws from an injected random source and waits on an injected
// clock.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy bounds the waits of a retry loop.
type Policy struct {
	Min, Max time.Duration // the first ceiling and the cap; Max below Min is read as Min
	// Floor is the fixed part of each wait, a fraction of the ceiling in
	// [0, 1): 0 is full jitter, 0.5 equal jitter.
	Floor float64
}

// Ceiling is the longest wait before retry n: Min·2^(n−1) capped at Max,
// without overflow for any n. n below 1 is read as 1.
func (p Policy) Ceiling(n int) time.Duration {
	hi := max(p.Max, p.Min)
	n = max(n, 1)
	if n-1 < 62 {
		if d := p.Min << (n - 1); d > 0 && d < hi && d>>(n-1) == p.Min {
			return d
		}
	}
	return hi
}

// Delay is the wait before retry n for a uniform r in [0, 1): the fixed
// part Floor·ceiling plus (1−r) of the rest, so r = 0 gives the ceiling.
// It is at least 1 ns unless the ceiling is zero or less, then 0.
func (p Policy) Delay(n int, r float64) time.Duration {
	c := p.Ceiling(n)
	if c <= 0 {
		return 0
	}
	fixed := time.Duration(min(max(p.Floor, 0), 1) * float64(c))
	return max(fixed+time.Duration((1-r)*float64(c-fixed)), 1)
}

// Backoff is a Policy with its attempt count, random source and clock. It
// is not safe for concurrent use; each loop owns one.
type Backoff struct {
	Policy
	// Rand returns a uniform float in [0, 1); nil means math/rand/v2.Float64.
	Rand func() float64
	// After is the clock Wait sleeps on; nil means time.After.
	After func(time.Duration) <-chan time.Time

	attempt int
}

// Next counts an attempt and returns the wait before it.
func (b *Backoff) Next() time.Duration {
	b.attempt++
	r := rand.Float64
	if b.Rand != nil {
		r = b.Rand
	}
	return b.Delay(b.attempt, r())
}

// Reset starts over from the shortest ceiling, after a success.
func (b *Backoff) Reset() { b.attempt = 0 }

// Wait sleeps Next() on the clock. It returns false, early, if ctx ends
// first.
func (b *Backoff) Wait(ctx context.Context) bool {
	d := b.Next()
	after := time.After
	if b.After != nil {
		after = b.After
	}
	select {
	case <-ctx.Done():
		return false
	case <-after(d):
		return true
	}
}
