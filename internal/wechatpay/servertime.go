package wechatpay

import (
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// AnswerWindow is how far an answer's Wechatpay-Timestamp may be from
// WeChat Pay's time as the terminal knows it, and how far a request's
// timestamp may be from WeChat Pay's own clock (the SDK's
// consts.FiveMinute).
const AnswerWindow = 5 * time.Minute

// ServerClock is WeChat Pay's time as last learned from the
// Wechatpay-Timestamp of a verified answer, carried forward on the boot
// clock (CLOCK_BOOTTIME), so that a step of the wall clock (time sync, a
// technician's `date`) does not move it. It never changes the system
// clock. The zero value is not usable; use NewServerClock. Safe for
// concurrent use.
type ServerClock struct {
	wall func() time.Time
	boot func() time.Duration

	mu        sync.Mutex
	known     bool
	server    time.Time     // WeChat Pay's time at bootAt
	bootAt    time.Duration // boot clock when learned
	learnedAt time.Time     // local wall clock when learned
	samples   uint64
}

// NewServerClock returns a clock that knows nothing yet. wall is the local
// wall clock (nil: time.Now) and boot the boot clock (nil: CLOCK_BOOTTIME).
func NewServerClock(wall func() time.Time, boot func() time.Duration) *ServerClock {
	if wall == nil {
		wall = time.Now
	}
	if boot == nil {
		boot = BootTime
	}
	return &ServerClock{wall: wall, boot: boot}
}

// BootTime reads CLOCK_BOOTTIME: time since boot, suspend included; it
// never steps. If the read fails it falls back to the process's monotonic
// clock.
func BootTime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return time.Since(processStart)
	}
	return time.Duration(ts.Nano())
}

var processStart = time.Now()

// Learn records that WeChat Pay's clock read serverUnix (seconds, from a
// verified answer's Wechatpay-Timestamp) now. The timestamp is whole
// seconds, so the estimate is taken half a second later.
func (c *ServerClock) Learn(serverUnix int64) {
	b, w := c.boot(), c.wall()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.known = true
	c.server = time.Unix(serverUnix, 0).Add(500 * time.Millisecond)
	c.bootAt, c.learnedAt = b, w
	c.samples++
}

// Now returns WeChat Pay's time now, as last learned and carried forward
// on the boot clock; ok is false until an answer has taught it.
func (c *ServerClock) Now() (t time.Time, ok bool) {
	b := c.boot()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.known {
		return time.Time{}, false
	}
	return c.server.Add(b - c.bootAt), true
}

// Offset returns WeChat Pay's time minus the local wall clock, now;
// positive when the terminal is behind. ok is false until learned.
func (c *ServerClock) Offset() (d time.Duration, ok bool) {
	t, ok := c.Now()
	if !ok {
		return 0, false
	}
	return t.Sub(c.wall()), true
}

// ServerTimeStatus is what status shows of the server clock.
type ServerTimeStatus struct {
	Known bool `json:"known"`
	// OffsetSeconds is WeChat Pay's time minus the local clock, in
	// seconds (positive: the terminal is behind).
	OffsetSeconds float64   `json:"offset_seconds"`
	LearnedAt     time.Time `json:"learned_at,omitzero"` // local wall clock
	Answers       uint64    `json:"answers"`             // verified answers learned from
}

// Status returns the clock's state for status.
func (c *ServerClock) Status() ServerTimeStatus {
	off, ok := c.Offset()
	c.mu.Lock()
	defer c.mu.Unlock()
	return ServerTimeStatus{Known: ok, OffsetSeconds: off.Round(time.Second).Seconds(), LearnedAt: c.learnedAt, Answers: c.samples}
}
