package daemon

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"taxi-agent/internal/admin"
	"taxi-agent/internal/config"
	"taxi-agent/internal/meter"
	"taxi-agent/internal/metersim"
	"taxi-agent/internal/outbox"
	"taxi-agent/internal/punch"
	"taxi-agent/internal/punchsim"
	"taxi-agent/internal/stamp"
	"taxi-agent/internal/testsupport"
	"taxi-agent/test/harness"
)

// movableClock returns a wall and boot clock at wall, sinceBoot after boot,
// that the test moves with set.
func movableClock(wall time.Time, sinceBoot time.Duration) *testsupport.Clock {
	c := testsupport.NewClock(wall)
	c.SetBoot("boot-1", sinceBoot)
	return c
}

// set steps c's wall clock to wall and its boot clock to sinceBoot.
func set(c *testsupport.Clock, wall time.Time, sinceBoot time.Duration) {
	c.Set(wall)
	c.SetBoot("boot-1", sinceBoot)
}

// stampClock is a stamp.Clock reading c.
func stampClock(c *testsupport.Clock, trustedAfter time.Time) *stamp.Clock {
	return &stamp.Clock{TrustedAfter: trustedAfter, Now: c.Now, Boot: c.Boot}
}

type rig struct {
	srv   *punchsim.Server
	meter *metersim.Meter
	d     *Daemon
	cfg   config.Config
	logs  *testsupport.SyncBuffer // the daemon's log, also in the test's
	// stop cancels Run and returns its error, as SIGTERM does; the test's
	// cleanup calls it too.
	stop func() error
}

// startDaemon runs the real pipeline against a pseudo-terminal and the fake
// endpoint, with the given clock, until the test ends. edit, if set,
// changes the config and the simulated meter's options.
func startDaemon(t *testing.T, clock *stamp.Clock, edit ...func(*config.Config, *punchsim.Server, *metersim.Options)) rig {
	t.Helper()
	srv := harness.StartEndpoint(t, punchsim.Options{})
	pty, err := metersim.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pty.Close() })
	cfg := harness.NewConfig(t.TempDir(), srv.Keys(), srv.URL(), pty.Path)
	cfg.Uploader.BackoffMin, cfg.Uploader.BackoffMax = 50*time.Millisecond, 200*time.Millisecond
	mo := metersim.Options{AnswerTimeout: time.Second}
	for _, e := range edit {
		e(&cfg, srv, &mo)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return runDaemon(t, cfg, srv, pty, mo, clock)
}

// runDaemon runs the pipeline with cfg against pty's meter end until the
// test ends or rig.stop.
func runDaemon(t *testing.T, cfg config.Config, srv *punchsim.Server, pty *metersim.PTY, mo metersim.Options, clock *stamp.Clock) rig {
	t.Helper()
	logs := &testsupport.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *Daemon, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Config: cfg, Clock: clock, Logger: slog.New(slog.NewTextHandler(io.MultiWriter(tWriter{t}, logs), &slog.HandlerOptions{Level: slog.LevelDebug})), Ready: func(d *Daemon) { ready <- d },
			RuntimeDir: os.Getenv("RUNTIME_DIRECTORY"),
			OpenPort:   func() (io.ReadWriteCloser, error) { return meter.OpenSerial(meter.PortConfig{Device: pty.Path}) }})
	}()
	var (
		once   sync.Once
		runErr error
	)
	stop := func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	var d *Daemon
	select {
	case d = <-ready:
	case err := <-done:
		done <- err // for stop
		t.Fatalf("daemon did not start: %v", err)
	}
	// READY means the technician's socket answers, at once.
	ac := admin.Dial(cfg.Admin.Socket)
	_, err := ac.Status(context.Background())
	ac.Close()
	if err != nil {
		t.Fatalf("admin socket right after READY: %v", err)
	}
	m := metersim.New(pty.Master, mo)
	return rig{srv: srv, meter: m, d: d, cfg: cfg, logs: logs, stop: stop}
}

func waitAccepted(t *testing.T, srv *punchsim.Server, n int) []punchsim.Punch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testsupport.Patience(10*time.Second))
	defer cancel()
	if err := srv.WaitAccepted(ctx, n); err != nil {
		t.Fatalf("waiting for %d accepted punches (have %d): %v", n, len(srv.Accepted()), err)
	}
	return srv.Accepted()
}

// TestUntrustedClockHoldsThenStamps: a terminal that boots in 1970 and a
// meter whose own time is implausible. The event is stored and answered
// 0x90, nothing goes out with a 1970 time, and once NTP sets the clock the
// event is stamped with its true receipt time, recovered from the boot
// clock.
func TestUntrustedClockHoldsThenStamps(t *testing.T) {
	trustedAfter := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	mc := movableClock(time.Unix(90, 0), 90*time.Second) // 1970, 90 s after boot
	r := startDaemon(t, stampClock(mc, trustedAfter))

	shift := metersim.Shift{Driver: "42108319880906011X", Trips: 7, At: time.Date(2001, 1, 1, 8, 0, 0, 0, stamp.Zone)}
	res, err := r.meter.SignIn(context.Background(), shift)
	if err != nil || !res.OK() {
		t.Fatalf("sign-in not reported: %+v %v", res, err)
	}
	waitStatus(t, r.d, "the sign-in stored", func(st admin.Status) bool { return st.Outbox.Pending == 1 })
	recs, _, err := r.d.Outbox().List(outbox.Pending, 0, 10)
	if err != nil || len(recs) != 1 {
		t.Fatalf("want 1 pending record, got %d (%v)", len(recs), err)
	}
	if recs[0].Event.EventTime != "" || recs[0].BootID != "boot-1" || recs[0].Monotonic != 90*time.Second {
		t.Fatalf("event not held with its boot reading: %+v", recs[0])
	}
	r.d.Uploader().Wake()
	time.Sleep(300 * time.Millisecond)
	if n := r.srv.Stats().Requests; n != 0 {
		t.Fatalf("%d request(s) sent while the clock is untrusted", n)
	}

	// NTP: 40 s of boot time later the wall clock reads 2026-11-28 02:00:40 UTC.
	set(mc, time.Date(2026, 11, 28, 2, 0, 40, 0, time.UTC), 130*time.Second)
	r.d.Uploader().Wake()
	got := waitAccepted(t, r.srv, 1)
	if want := "2026-11-28T10:00:00.000+08:00"; got[0].EventTime != want {
		t.Fatalf("event_time = %s, want %s (receipt time recovered from the boot clock)", got[0].EventTime, want)
	}
}

// TestEmptySignOutLicenceTakesOpenShift: a meter that leaves the licence
// out of the sign-out; the punch carries the open sign-in's licence.
func TestEmptySignOutLicenceTakesOpenShift(t *testing.T) {
	r := startDaemon(t, nil)
	ctx := context.Background()
	shift := metersim.Shift{Driver: "440301199001011234", Trips: 10, At: time.Now().Add(-time.Hour)}
	if res, err := r.meter.SignIn(ctx, shift); err != nil || !res.OK() {
		t.Fatalf("sign-in: %+v %v", res, err)
	}
	noLicence := shift
	noLicence.Driver = ""
	if res, err := r.meter.SignOut(ctx, noLicence); err != nil || !res.OK() {
		t.Fatalf("sign-out: %+v %v", res, err)
	}
	got := waitAccepted(t, r.srv, 2)
	if got[1].EventType != punch.SignOut || got[1].DriverLicense != "440301199001011234" {
		t.Fatalf("sign-out punch = %+v, want the open shift's licence", got[1])
	}
}

// waitStatus polls the daemon's status until cond holds.
func waitStatus(t *testing.T, d *Daemon, what string, cond func(admin.Status) bool) admin.Status {
	t.Helper()
	deadline := time.Now().Add(testsupport.Patience(15 * time.Second))
	for {
		st, err := d.Status(context.Background())
		if err == nil && cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; status %+v, %v", what, st, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
