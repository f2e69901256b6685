package meter

import (
	"math/rand/v2"
	"time"
)

// backoff is the capped exponential wait between attempts to reopen the
// port, with "equal jitter": half of each wait is fixed, half random, so a
// fleet of terminals does not retry in step and a wait never collapses to
// nothing.
type backoff struct {
	min, max time.Duration
	attempt  int
	rand     func(n int64) int64 // uniform in [0, n); rand.Int64N by default
}

func newBackoff(lo, hi time.Duration, rnd func(int64) int64) *backoff {
	if rnd == nil {
		rnd = rand.Int64N
	}
	return &backoff{min: lo, max: max(hi, lo), rand: rnd}
}

// next returns the wait before the next attempt and counts the attempt.
func (b *backoff) next() time.Duration {
	d := b.max
	if b.attempt < 32 {
		if e := b.min << b.attempt; e > 0 && e < b.max {
			d = e
		}
	}
	b.attempt++
	half := d / 2
	return d - half + time.Duration(b.rand(int64(half)+1))
}

// reset starts over from the shortest wait.
func (b *backoff) reset() { b.attempt = 0 }
