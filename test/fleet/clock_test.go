package fleet

import (
	"time"
)

// simClock is the drain loops' and the rate limiter's clock: simulated
// time that runs speed times faster than real time from a fixed epoch, so
// that a fleet drain of minutes takes seconds. Everything that bounds
// network I/O (the uploader's attempt timeout, TLS, the transport's quick
// retry waits) stays on the real clock; the transport waits are divided by
// speed in the uploaders' config.
type simClock struct {
	epoch time.Time // simulated time at start
	start time.Time // real time at start, with its monotonic reading
	speed float64
}

func newSimClock(speed float64) *simClock {
	return &simClock{
		epoch: time.Date(2026, 11, 28, 2, 30, 0, 0, time.UTC),
		start: time.Now(),
		speed: speed,
	}
}

// Now is the simulated time.
func (c *simClock) Now() time.Time {
	return c.epoch.Add(c.sim(time.Since(c.start)))
}

// Since is the simulated time elapsed since t.
func (c *simClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// After fires after d of simulated time.
func (c *simClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	time.AfterFunc(c.real(d), func() { ch <- c.Now() })
	return ch
}

// real converts a simulated duration to real time.
func (c *simClock) real(d time.Duration) time.Duration {
	return time.Duration(float64(d) / c.speed)
}

// sim converts a real duration to simulated time.
func (c *simClock) sim(d time.Duration) time.Duration {
	return time.Duration(float64(d) * c.speed)
}
