// Package stamp decides the event_time of a punch (docs/meter-protocol.md, "Time").
//
// The event time is the wall clock at receipt in the fixed zone UTC+8,
// whatever the system zone. A re-sent sign-out (0x00F1) happened earlier and
// takes the meter's sign-out time. A wall clock before the binary's build
// time is not trusted (a board without RTC battery boots in 1970): the
// meter's time is used if it is plausible, and otherwise the event is held
// with its boot id and CLOCK_BOOTTIME reading and stamped once the clock is
// trusted. A time before the trust floor never goes out.
//
// While the system does not report the clock synchronised (SyncState), a
// wall clock more than MaxMeterSkew from the meter's own clock is not
// trusted either: the event takes the meter's time, and the disagreement
// is kept for `agent status` (a board whose clock came up in 2042 sent its
// sign-ins with 2042 times). docs/meter-protocol.md, "Time".
package stamp

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Zone is China Standard Time, UTC+8, with no daylight saving.
var Zone = time.FixedZone("UTC+8", 8*60*60)

// Layout formats an event time as the punch API wants it:
// 2026-11-28T10:30:00.123+08:00.
const Layout = "2006-01-02T15:04:05.000-07:00"

// Format renders t in UTC+8 with milliseconds.
func Format(t time.Time) string { return t.In(Zone).Format(Layout) }

// meterSlack is how far before the trust floor a meter's time may be and
// still count as plausible (the meter keeps its own battery-backed clock, at
// minute precision).
const meterSlack = 7 * 24 * time.Hour

// Source says where an event time came from.
type Source string

// The sources of an event time.
const (
	FromWallClock Source = "wall clock"
	FromMeter     Source = "meter time"
	// FromMeterSkew: the clock was not synchronised and disagreed with
	// the meter's by more than MaxMeterSkew.
	FromMeterSkew Source = "meter time (unsynchronised wall clock disagrees)"
	Held          Source = "held until the clock is trusted"
)

// MaxMeterSkew is how far an unsynchronised wall clock may be from the
// meter's clock and still be trusted. The meter's time has minute
// precision and its own drift; an hour is far beyond both.
const MaxMeterSkew = time.Hour

// Disagreement is a time the unsynchronised wall clock and the meter's
// clock disagreed by more than MaxMeterSkew.
type Disagreement struct {
	At     time.Time     `json:"at"`     // the wall clock at receipt
	Meter  time.Time     `json:"meter"`  // the meter's time for the event
	Offset time.Duration `json:"offset"` // wall clock minus meter time
}

// Reading is the clock at the moment a frame arrived.
type Reading struct {
	Wall      time.Time
	BootID    string
	Monotonic time.Duration // CLOCK_BOOTTIME: counts through suspend, restarts at boot
	Trusted   bool
	Synced    bool // the system reported the clock synchronised
}

// Clock reads the wall clock and the boot clock and knows when the wall
// clock can be trusted.
type Clock struct {
	TrustedAfter time.Time
	Now          func() time.Time
	Boot         func() (bootID string, sinceBoot time.Duration, err error)
	// Sync reports whether the system says the clock is synchronised;
	// nil means it always is.
	Sync func() SyncState

	mu       sync.Mutex
	disagree *Disagreement
}

// System returns the machine's clocks, trusting the wall clock from
// trustedAfter on.
func System(trustedAfter time.Time) *Clock {
	return &Clock{TrustedAfter: trustedAfter, Now: time.Now, Boot: systemBoot, Sync: SystemSync}
}

// SyncState reports the synchronisation state now.
func (c *Clock) SyncState() SyncState {
	if c.Sync == nil {
		return SyncState{Synchronized: true, Source: SyncUnknown}
	}
	return c.Sync()
}

// LastDisagreement is the last time an unsynchronised wall clock was
// found more than MaxMeterSkew from the meter's, or nil.
func (c *Clock) LastDisagreement() *Disagreement {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.disagree == nil {
		return nil
	}
	d := *c.disagree
	return &d
}

// Trusted reports whether the wall clock is past the trust floor now.
func (c *Clock) Trusted() bool { return !c.Now().Before(c.TrustedAfter) }

// Read takes a reading for an arriving frame.
func (c *Clock) Read() Reading {
	r := Reading{Wall: c.Now(), Synced: c.SyncState().Synchronized}
	r.Trusted = !r.Wall.Before(c.TrustedAfter)
	if id, mono, err := c.Boot(); err == nil {
		r.BootID, r.Monotonic = id, mono
	}
	return r
}

// EventTime picks the event time for a frame read at r whose meter time is
// meterTime (zero if the meter's BCD was invalid). resend is true for a
// re-sent sign-out (0x00F1). An empty string with Held means: store the
// event and stamp it later with Resolve. An unsynchronised wall clock
// more than MaxMeterSkew from a plausible meter time gives way to it, and
// the disagreement is kept (LastDisagreement).
func (c *Clock) EventTime(r Reading, meterTime time.Time, resend bool) (string, Source) {
	plausible := !meterTime.IsZero() && !meterTime.Before(c.TrustedAfter.Add(-meterSlack))
	switch {
	case resend && plausible:
		return Format(meterTime), FromMeter
	case r.Trusted && !r.Synced && plausible && skewed(r.Wall, meterTime):
		c.mu.Lock()
		c.disagree = &Disagreement{At: r.Wall, Meter: meterTime, Offset: r.Wall.Sub(meterTime)}
		c.mu.Unlock()
		return Format(meterTime), FromMeterSkew
	case r.Trusted:
		return Format(r.Wall), FromWallClock
	case plausible:
		return Format(meterTime), FromMeter
	}
	return "", Held
}

// Resolve stamps an event that was held, given the boot id and boot-clock
// reading taken at receipt. In the same boot the receipt time is recovered
// exactly from the boot clock. After a reboot it cannot be: the event is
// stamped with the current time (it surely happened before, so the driver
// is shown signed in no earlier than truth), and exact is false so the
// caller can log that. ok is false while the clock is still untrusted.
func (c *Clock) Resolve(bootID string, mono time.Duration) (eventTime string, exact, ok bool) {
	now := c.Now()
	if now.Before(c.TrustedAfter) {
		return "", false, false
	}
	id, monoNow, err := c.Boot()
	if err == nil && bootID != "" && id == bootID && mono <= monoNow {
		t := now.Add(-(monoNow - mono))
		if !t.Before(c.TrustedAfter) {
			return Format(t), true, true
		}
	}
	return Format(now), false, true
}

func skewed(wall, meter time.Time) bool {
	d := wall.Sub(meter)
	return d > MaxMeterSkew || d < -MaxMeterSkew
}

func systemBoot() (string, time.Duration, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", 0, fmt.Errorf("read boot id: %w", err)
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return "", 0, fmt.Errorf("read boot clock: %w", err)
	}
	return strings.TrimSpace(string(b)), time.Duration(ts.Nano()), nil
}
