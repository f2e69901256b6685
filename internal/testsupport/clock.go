package testsupport

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// Clock is a fake clock that moves only when the test moves it: a wall
// clock (Now), timers on it (After), and a boot clock (Boot: a boot id and
// the time since boot, as CLOCK_BOOTTIME reads). Its methods are safe for
// concurrent use, so the code under test may read it from its goroutines.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	bootID  string
	boot    time.Duration
	waiters []waiter
	changed chan struct{} // closed and replaced when a timer is added
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

// NewClock returns a Clock at start, in boot "boot-1" at 0.
func NewClock(start time.Time) *Clock {
	return &Clock{now: start, bootID: "boot-1", changed: make(chan struct{})}
}

// Now returns the wall clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After returns a channel that receives the wall time once Set or Advance
// reaches d from now; at once for d <= 0.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, waiter{at: c.now.Add(d), ch: ch})
	close(c.changed)
	c.changed = make(chan struct{})
	return ch
}

// Set steps the wall clock to t, as a clock set by hand or by NTP does (the
// boot clock does not move), and fires the timers due by t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(t) {
			w.ch <- t
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// Advance lets d pass: the wall and the boot clock move by d, and the
// timers due fire.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.boot += d
	now := c.now.Add(d)
	c.mu.Unlock()
	c.Set(now)
}

// Boot returns the boot id and the time since boot, in the shape of
// stamp.Clock.Boot.
func (c *Clock) Boot() (string, time.Duration, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bootID, c.boot, nil
}

// SetBoot sets the boot id and the time since boot: a reboot, or a test's
// starting point.
func (c *Clock) SetBoot(id string, sinceBoot time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bootID, c.boot = id, sinceBoot
}

// Changed returns a channel closed when a timer is next set.
func (c *Clock) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// Sleepers returns the deadlines of the timers not yet fired, earliest
// first.
func (c *Clock) Sleepers() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]time.Time, 0, len(c.waiters))
	for _, w := range c.waiters {
		out = append(out, w.at)
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out
}

// WaitSleeper blocks until n timers due at `at` are set: the code under
// test has decided to sleep until then. It fails the test after 10 s.
func (c *Clock) WaitSleeper(tb testing.TB, at time.Time, n int) {
	tb.Helper()
	c.waitTimers(tb, "to sleep until "+at.String(), func(ws []waiter) bool {
		found := 0
		for _, w := range ws {
			if w.at.Equal(at) {
				found++
			}
		}
		return found >= n
	})
}

// WaitAnySleeper blocks until a timer is set and returns the earliest
// deadline. It fails the test after 10 s.
func (c *Clock) WaitAnySleeper(tb testing.TB) time.Time {
	tb.Helper()
	c.waitTimers(tb, "to sleep", func(ws []waiter) bool { return len(ws) > 0 })
	return c.Sleepers()[0]
}

func (c *Clock) waitTimers(tb testing.TB, what string, ok func([]waiter) bool) {
	tb.Helper()
	deadline := time.After(Patience(10 * time.Second))
	for {
		c.mu.Lock()
		done, ch := ok(c.waiters), c.changed
		c.mu.Unlock()
		if done {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			tb.Fatalf("timed out waiting for the code under test %s", what)
		}
	}
}
