package stamp

import (
	"os"
	"regexp"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"taxi-agent/internal/testsupport"
)

var apiPattern = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+08:00$`)

// fakeClock returns a clock at wall, in boot "b1" at sinceBoot, that the
// test moves.
func fakeClock(wall time.Time, sinceBoot time.Duration) *testsupport.Clock {
	c := testsupport.NewClock(wall)
	c.SetBoot("b1", sinceBoot)
	return c
}

// clockOn is a Clock reading f.
func clockOn(f *testsupport.Clock, trustedAfter time.Time) *Clock {
	return &Clock{TrustedAfter: trustedAfter, Now: f.Now, Boot: f.Boot}
}

var floor = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func TestFormatIsUTC8WhateverTheZone(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		ny = time.FixedZone("EST", -5*3600)
	}
	at := time.Date(2026, 11, 28, 2, 30, 0, 123_000_000, time.UTC).In(ny)
	if got, want := Format(at), "2026-11-28T10:30:00.123+08:00"; got != want {
		t.Fatalf("Format = %s, want %s", got, want)
	}
	if !apiPattern.MatchString(Format(time.Unix(0, 0))) {
		t.Fatal("format does not match the API pattern")
	}
}

func TestEventTime(t *testing.T) {
	meter := time.Date(2026, 11, 28, 10, 30, 0, 0, Zone)
	wall := time.Date(2026, 11, 28, 2, 31, 5, 250_000_000, time.UTC)
	epoch := time.Unix(12, 0) // a board without RTC battery
	tests := []struct {
		name    string
		wall    time.Time
		meter   time.Time
		resend  bool
		want    string
		wantSrc Source
	}{
		{"trusted clock", wall, meter, false, "2026-11-28T10:31:05.250+08:00", FromWallClock},
		{"re-sent sign-out takes the meter time", wall, meter, true, "2026-11-28T10:30:00.000+08:00", FromMeter},
		{"re-sent sign-out with a bad meter time", wall, time.Time{}, true, "2026-11-28T10:31:05.250+08:00", FromWallClock},
		{"untrusted clock falls back to the meter", epoch, meter, false, "2026-11-28T10:30:00.000+08:00", FromMeter},
		{"untrusted clock and implausible meter time", epoch, time.Date(2000, 1, 1, 0, 0, 0, 0, Zone), false, "", Held},
		{"untrusted clock and no meter time", epoch, time.Time{}, false, "", Held},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := clockOn(fakeClock(tt.wall, time.Minute), floor)
			got, src := c.EventTime(c.Read(), tt.meter, tt.resend)
			if got != tt.want || src != tt.wantSrc {
				t.Fatalf("EventTime = %q (%s), want %q (%s)", got, src, tt.want, tt.wantSrc)
			}
		})
	}
}

func TestResolveHeld(t *testing.T) {
	f := fakeClock(time.Unix(100, 0), 100*time.Second)
	c := clockOn(f, floor)
	r := c.Read()
	if r.Trusted {
		t.Fatal("1970 trusted")
	}
	if _, _, ok := c.Resolve(r.BootID, r.Monotonic); ok {
		t.Fatal("resolved while the clock is still untrusted")
	}

	// NTP sets the clock 50 s of boot time later: the receipt time is recovered.
	f.Advance(50 * time.Second)
	f.Set(time.Date(2026, 11, 28, 2, 0, 50, 0, time.UTC))
	got, exact, ok := c.Resolve(r.BootID, r.Monotonic)
	if !ok || !exact || got != "2026-11-28T10:00:00.000+08:00" {
		t.Fatalf("Resolve = %q exact=%v ok=%v", got, exact, ok)
	}

	// After a reboot the boot clock means nothing: stamp now, not exact.
	f.SetBoot("b2", 150*time.Second)
	got, exact, ok = c.Resolve(r.BootID, r.Monotonic)
	if !ok || exact || got != "2026-11-28T10:00:50.000+08:00" {
		t.Fatalf("after reboot Resolve = %q exact=%v ok=%v", got, exact, ok)
	}
}

func TestSystemClockReads(t *testing.T) {
	r := System(floor).Read()
	if r.BootID == "" || r.Monotonic <= 0 {
		t.Fatalf("system reading lacks boot id or boot clock: %+v", r)
	}
}

// TestEventTimeAgainstTheMeter: while the clock is not synchronised, a
// wall clock more than an hour from the meter's gives way to the meter's
// time and the disagreement is kept; within the hour, or synchronised,
// the wall clock is trusted as before. The field report: a board whose
// clock came up in 2042.
func TestEventTimeAgainstTheMeter(t *testing.T) {
	meter := time.Date(2026, 11, 30, 11, 50, 0, 0, Zone)
	for _, tt := range []struct {
		name    string
		wall    time.Time
		synced  bool
		want    string
		wantSrc Source
	}{
		{"2042, not synchronised", time.Date(2042, 4, 27, 2, 20, 0, 0, time.UTC), false, "2026-11-30T11:50:00.000+08:00", FromMeterSkew},
		{"2042, synchronised", time.Date(2042, 4, 27, 2, 20, 0, 0, time.UTC), true, "2042-04-27T10:20:00.000+08:00", FromWallClock},
		{"59 minutes off, not synchronised", meter.Add(59 * time.Minute), false, "2026-11-30T12:49:00.000+08:00", FromWallClock},
		{"61 minutes behind, not synchronised", meter.Add(-61 * time.Minute), false, "2026-11-30T11:50:00.000+08:00", FromMeterSkew},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := clockOn(fakeClock(tt.wall, time.Minute), floor)
			c.Sync = func() SyncState { return SyncState{Synchronized: tt.synced, Source: SyncKernel} }
			got, src := c.EventTime(c.Read(), meter, false)
			if got != tt.want || src != tt.wantSrc {
				t.Fatalf("EventTime = %q (%s), want %q (%s)", got, src, tt.want, tt.wantSrc)
			}
			d := c.LastDisagreement()
			if (src == FromMeterSkew) != (d != nil) || d != nil && (d.Offset != tt.wall.Sub(meter) || !d.Meter.Equal(meter)) {
				t.Errorf("disagreement %+v", d)
			}
		})
	}
}

// TestReadSync: systemd's rule (maximum error below 16 s, STA_UNSYNC
// ignored), and timesyncd's flag file when adjtimex is refused.
func TestReadSync(t *testing.T) {
	dir := t.TempDir()
	flag := dir + "/timesync/synchronized"
	kernel := func(d time.Duration, err error) func() (time.Duration, error) {
		return func() (time.Duration, error) { return d, err }
	}
	if st := readSync(kernel(500*time.Millisecond, nil), flag); !st.Synchronized || st.Source != SyncKernel {
		t.Errorf("small max error: %+v", st)
	}
	if st := readSync(kernel(16*time.Second, nil), flag); st.Synchronized {
		t.Errorf("max error 16 s counted as synchronised: %+v", st)
	}
	eperm := kernel(0, unix.EPERM)
	if st := readSync(eperm, flag); st.Synchronized || st.Source != SyncUnknown || st.Err == "" {
		t.Errorf("EPERM without timesyncd: %+v", st)
	}
	if err := os.MkdirAll(dir+"/timesync", 0o755); err != nil {
		t.Fatal(err)
	}
	if st := readSync(eperm, flag); st.Synchronized || st.Source != SyncTimesyncd {
		t.Errorf("EPERM, timesyncd not yet synchronised: %+v", st)
	}
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if st := readSync(eperm, flag); !st.Synchronized || st.Source != SyncTimesyncd {
		t.Errorf("EPERM, timesyncd synchronised: %+v", st)
	}
	// This machine's own state reads one way or the other.
	t.Logf("this machine: %+v", SystemSync())
}
