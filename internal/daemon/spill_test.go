package daemon

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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

// envSpillChild names the config file of a child process that runs the
// daemon until it is killed (TestHeldSignInSurvivesKill).
const envSpillChild = "DAEMON_TEST_SPILL_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(envSpillChild); path != "" {
		os.Exit(spillChild(path))
	}
	os.Exit(m.Run())
}

// untrusted1970 is a terminal 90 s after boot with its clock in 1970:
// nothing is sent, so nothing delivered is pruned to make room.
func untrusted1970() *stamp.Clock {
	return stampClock(movableClock(time.Unix(90, 0), 90*time.Second), time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
}

// fillDead fills ob with dead records, which are never sent nor pruned,
// until it refuses more, then with pending ones that wait for the clock
// (a write to the small pending bucket may fit where one to the large
// dead bucket did not). It returns how many records it stored.
func fillDead(ob *outbox.Outbox) (int, error) {
	n, err := fillWith(func(r outbox.Record) (uint64, bool, error) { return ob.EnqueueDead(r, "test filler") })
	if err != nil {
		return n, err
	}
	m, err := fillWith(ob.Enqueue)
	return n + m, err
}

// holdSignIn fills the outbox and signs a driver in until the outbox
// refuses the sign-in and the daemon holds it (bbolt may take one more
// write after refusing one; see TestSignInKeptWhileOutboxRefuses).
func holdSignIn(t *testing.T, m *metersim.Meter, status func() (admin.Status, error), fill func() error) metersim.Shift {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A meter time the agent cannot believe (2001): with the wall clock
	// in 1970 too, the sign-ins wait for the clock instead of going out,
	// so nothing delivered is pruned to make room.
	at := time.Date(2001, 1, 1, 8, 0, 0, 0, stamp.Zone)
	for attempt := range 5 {
		if err := fill(); err != nil {
			t.Fatal(err)
		}
		before, err := status()
		if err != nil {
			t.Fatal(err)
		}
		shift := metersim.Shift{Driver: "4210831988090601" + strconv.Itoa(10+attempt) + "X", Trips: 21,
			At: at, End: at.Add(time.Hour)}
		if res, err := m.SignIn(ctx, shift); err != nil || !res.OK() {
			t.Fatalf("sign-in: %+v %v", res, err)
		}
		var st admin.Status
		testsupport.WaitFor(t, 15*time.Second, "the sign-in held or stored", func() bool {
			var err error
			st, err = status()
			return err == nil && (st.Held.Count == 1 || st.Outbox.Pending == before.Outbox.Pending+1)
		})
		if st.Held.Count == 1 {
			return shift
		}
	}
	t.Fatal("the outbox took 5 sign-ins after refusing writes")
	return metersim.Shift{}
}

// waitOnDisk waits until status shows the held sign-in in the spill file.
func waitOnDisk(t *testing.T, status func() (admin.Status, error)) {
	t.Helper()
	testsupport.WaitFor(t, 15*time.Second, "the held sign-in on disk", func() bool {
		st, err := status()
		return err == nil && st.Held.Count == 1 && st.Held.OnDisk == 1 && st.Held.SpillError == ""
	})
}

// restartAccepting runs a second daemon on cfg's files with room in the
// outbox and a trusted clock (10 minutes after the same boot), signs the
// held driver out, and checks that the held sign-in was stored and
// delivered once, before the sign-out.
func restartAccepting(t *testing.T, cfg config.Config, srv *punchsim.Server, shift metersim.Shift) rig {
	t.Helper()
	cfg.Outbox.MaxSizeMiB = 64
	pty, err := metersim.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pty.Close() })
	cfg.Meter.Device = pty.Path
	r := runDaemon(t, cfg, srv, pty, metersim.Options{AnswerTimeout: time.Second},
		stampClock(movableClock(time.Now(), 10*time.Minute), time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)))
	waitFor := func(what string, cond func([]punchsim.Punch) bool) []punchsim.Punch {
		t.Helper()
		var got []punchsim.Punch
		testsupport.WaitFor(t, 30*time.Second, what, func() bool { got = r.srv.Accepted(); return cond(got) })
		return got
	}
	of := func(got []punchsim.Punch) (order []string) {
		for _, p := range got {
			if p.DriverLicense == shift.Driver {
				order = append(order, p.EventType)
			}
		}
		return order
	}
	waitFor("the held sign-in delivered after the restart", func(got []punchsim.Punch) bool { return len(of(got)) >= 1 })
	if res, err := r.meter.SignOut(context.Background(), shift); err != nil || !res.OK() {
		t.Fatalf("sign-out after the restart: %+v %v", res, err)
	}
	got := waitFor("the sign-out delivered", func(got []punchsim.Punch) bool { return len(of(got)) >= 2 })
	time.Sleep(200 * time.Millisecond)
	if order := of(r.srv.Accepted()); strings.Join(order, ",") != "SIGN_IN,SIGN_OUT" {
		t.Fatalf("punches of the held driver: %v, want SIGN_IN,SIGN_OUT (all: %d)", order, len(got))
	}
	for _, spill := range []string{cfg.Outbox.Path + SpillSuffix, RuntimeSpillPath(cfg.Outbox.Path, os.Getenv("RUNTIME_DIRECTORY"))} {
		if spill == "" {
			continue
		}
		testsupport.WaitFor(t, 5*time.Second, "the spill file removed", func() bool {
			_, err := os.Stat(spill)
			return os.IsNotExist(err)
		})
	}
	if st, err := r.d.Status(context.Background()); err != nil || st.Held.Count != 0 || st.Held.SpillError != "" {
		t.Errorf("status after recovery: %+v, %v", st.Held, err)
	}
	return r
}

// TestHeldSignInSurvivesStop: a sign-in held while the outbox refuses
// writes is on disk when the agent is stopped (SIGTERM: the context is
// cancelled) before the outbox accepts; the next start on the same files,
// with an outbox that accepts, stores and delivers it before the sign-out
// that follows.
func TestHeldSignInSurvivesStop(t *testing.T) {
	r := startDaemon(t, untrusted1970(), func(c *config.Config, _ *punchsim.Server, _ *metersim.Options) { c.Outbox.MaxSizeMiB = 1 })
	status := func() (admin.Status, error) { return r.d.Status(context.Background()) }
	shift := holdSignIn(t, r.meter, status, func() error { _, err := fillDead(r.d.outbox); return err })
	waitOnDisk(t, status)
	if err := r.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !strings.Contains(r.logs.String(), "kept in the spill file and stored at the next start") {
		t.Errorf("the stop did not log the held event as kept on disk")
	}
	data, err := os.ReadFile(r.cfg.Outbox.Path + SpillSuffix)
	if err != nil {
		t.Fatal(err)
	}
	events, damaged := decodeSpill(data)
	if len(events) != 1 || len(damaged) != 0 || events[0].rec.Event.DriverLicense != shift.Driver || events[0].rec.Event.Type != punch.SignIn {
		t.Fatalf("spill file after the stop: %d events %+v, damaged %+v", len(events), events, damaged)
	}
	restartAccepting(t, r.cfg, r.srv, shift)
}

// childDaemon is the daemon in a child process (spillChild), on a
// pseudo-terminal's meter end and the fake endpoint.
type childDaemon struct {
	cfg   config.Config
	srv   *punchsim.Server
	pty   *metersim.PTY
	cmd   *exec.Cmd
	stdin io.Writer
	lines *bufio.Scanner
	// unblock, if set, runs between the kill and the wait: what lets a
	// child blocked in the kernel die (a thaw).
	unblock func() error
	killed  bool
}

// startChild starts a child daemon on a config that edit changes, and
// waits for it to say "ready". The test's end kills it if the test did not.
func startChild(t *testing.T, edit func(*config.Config), unblock func() error) *childDaemon {
	t.Helper()
	c := &childDaemon{srv: harness.StartEndpoint(t, punchsim.Options{}), unblock: unblock}
	var err error
	if c.pty, err = metersim.OpenPTY(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.pty.Close() })
	dir := t.TempDir()
	c.cfg = harness.NewConfig(dir, c.srv.Keys(), c.srv.URL(), c.pty.Path)
	edit(&c.cfg)
	cfgPath := filepath.Join(dir, "agent.toml")
	if err := harness.WriteConfigFile(cfgPath, c.cfg); err != nil {
		t.Fatal(err)
	}
	var stdout io.Reader
	c.cmd, c.stdin, stdout = testsupport.StartChild(t, envSpillChild+"="+cfgPath)
	t.Cleanup(func() {
		if !c.killed {
			c.kill(t)
		}
	})
	c.lines = bufio.NewScanner(stdout)
	c.expect(t, "ready")
	return c
}

// expect reads the child's next line and fails the test unless it starts
// with prefix.
func (c *childDaemon) expect(t *testing.T, prefix string) {
	t.Helper()
	if !c.lines.Scan() || !strings.HasPrefix(c.lines.Text(), prefix) {
		t.Fatalf("child said %q (%v), want %s…", c.lines.Text(), c.lines.Err(), prefix)
	}
}

// kill kills the child with SIGKILL and waits for it to die.
func (c *childDaemon) kill(t *testing.T) {
	t.Helper()
	c.killed = true
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if c.unblock != nil {
		if err := c.unblock(); err != nil {
			t.Fatal(err)
		}
	}
	c.cmd.Wait()
}

// TestHeldSignInSurvivesKill: as TestHeldSignInSurvivesStop, but the
// agent is a child process killed with SIGKILL (a crash, a watchdog kill,
// the nearest a test gets to a power cut) while the sign-in is held.
func TestHeldSignInSurvivesKill(t *testing.T) {
	testsupport.SkipIfEmulated(t, "the child daemon under the emulator is too slow for the held sign-in's timing")
	c := startChild(t, func(cfg *config.Config) { cfg.Outbox.MaxSizeMiB = 1 }, nil)
	client := admin.Dial(c.cfg.Admin.Socket)
	defer client.Close()
	m := metersim.New(c.pty.Master, metersim.Options{AnswerTimeout: time.Second})
	status := func() (admin.Status, error) { return client.Status(context.Background()) }
	shift := holdSignIn(t, m, status, func() error {
		if _, err := fmt.Fprintln(c.stdin, "fill"); err != nil {
			return err
		}
		c.expect(t, "filled")
		return nil
	})
	waitOnDisk(t, status)
	c.kill(t)
	restartAccepting(t, c.cfg, c.srv, shift)
}

// spillChild runs the daemon on the config at path, with the clock in
// 1970, says "ready", and fills the outbox with dead records each time
// its stdin says "fill", until it is killed.
func spillChild(path string) int {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	ready := make(chan *Daemon, 1)
	go func() {
		err := Run(context.Background(), Options{Config: cfg, Clock: untrusted1970(),
			Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)), Ready: func(d *Daemon) { ready <- d },
			RuntimeDir: os.Getenv("RUNTIME_DIRECTORY"),
			OpenPort: func() (io.ReadWriteCloser, error) {
				return meter.OpenSerial(meter.PortConfig{Device: cfg.Meter.Device})
			}})
		fmt.Println("error", err)
		os.Exit(1)
	}()
	d := <-ready
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		n, err := fillDead(d.outbox)
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		fmt.Println("filled", n)
	}
	select {} // until killed
}

// TestSpillFileTornLastLine: a spill file whose last line was cut short
// (a power cut during the append). The whole lines are stored and
// delivered in order, the torn one is logged with what could be made out
// of it, and the damaged file is kept beside.
func TestSpillFileTornLastLine(t *testing.T) {
	at := time.Now().Add(-time.Hour).Truncate(time.Minute)
	ev := func(licence string, n int) heldEvent {
		return heldEvent{arrived: at, rec: outbox.Record{
			Event: punch.Event{Type: punch.SignIn, DriverLicense: licence, PlateNumber: harness.Plate, RegionID: harness.RegionID,
				EventTime: stamp.Format(at.Add(time.Duration(n) * time.Minute))},
			Identity: "SIGN_IN|" + licence, ReceivedAt: at, MeterTime: at,
		}}
	}
	var file []byte
	for i, lic := range []string{"110105194912310021", "110105194912310022", "110105194912310023"} {
		line, err := encodeSpillLine(ev(lic, i))
		if err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			line = line[:len(line)*2/3] // torn after the licence
		}
		file = append(file, line...)
	}
	var spillPath string
	r := startDaemon(t, nil, func(c *config.Config, _ *punchsim.Server, _ *metersim.Options) {
		spillPath = c.Outbox.Path + SpillSuffix
		if err := os.WriteFile(spillPath, file, 0o600); err != nil {
			t.Fatal(err)
		}
	})
	got := waitAccepted(t, r.srv, 2)
	if got[0].DriverLicense != "110105194912310021" || got[1].DriverLicense != "110105194912310022" {
		t.Fatalf("punches %+v, want the two whole lines in order", got)
	}
	logs := r.logs.String()
	if !strings.Contains(logs, "spill file line damaged") || !strings.Contains(logs, "line=3") ||
		!strings.Contains(logs, "torn (no end of line)") || !strings.Contains(logs, "event_type=SIGN_IN") ||
		!strings.Contains(logs, "0023") || strings.Contains(logs, "110105194912310023") {
		t.Errorf("the torn line is not logged with what was lost of it (masked):\n%s", logs)
	}
	kept, _ := filepath.Glob(spillPath + ".damaged-*")
	if len(kept) != 1 {
		t.Fatalf("damaged copies %v, want one", kept)
	}
	if data, err := os.ReadFile(kept[0]); err != nil || string(data) != string(file) {
		t.Errorf("damaged copy differs from the file: %v", err)
	}
	testsupport.WaitFor(t, 5*time.Second, "the spill file removed", func() bool {
		_, err := os.Stat(spillPath)
		return os.IsNotExist(err)
	})
	time.Sleep(200 * time.Millisecond)
	if n := len(r.srv.Accepted()); n != 2 {
		t.Errorf("%d punches, want 2", n)
	}
}

// TestSpillFileUnwritable: the spill file cannot be written (a directory
// stands at its path). The held sign-in stays in memory, the failure is
// logged once however often the write is retried, and status shows it;
// once the path is free the retry writes it, and the stop leaves it on
// disk.
func TestSpillFileUnwritable(t *testing.T) {
	r := startDaemon(t, untrusted1970(), func(c *config.Config, _ *punchsim.Server, _ *metersim.Options) { c.Outbox.MaxSizeMiB = 1 })
	spillPath := r.cfg.Outbox.Path + SpillSuffix
	if err := os.Mkdir(spillPath, 0o700); err != nil {
		t.Fatal(err)
	}
	status := func() (admin.Status, error) { return r.d.Status(context.Background()) }
	shift := holdSignIn(t, r.meter, status, func() error { _, err := fillDead(r.d.outbox); return err })
	testsupport.WaitFor(t, 15*time.Second, "the spill failure in status", func() bool {
		st, err := status()
		return err == nil && st.Held.SpillError != "" && st.Held.OnDisk == 0 && st.Held.SpillFile == spillPath
	})
	time.Sleep(spillRetry + spillRetry/2) // at least one retry
	const failed = "could not write held events to the spill file"
	if n := strings.Count(r.logs.String(), failed); n != 1 {
		t.Errorf("the spill failure logged %d times, want once", n)
	}
	if err := os.Remove(spillPath); err != nil {
		t.Fatal(err)
	}
	waitOnDisk(t, status)
	if !strings.Contains(r.logs.String(), "spill file written again") {
		t.Errorf("the recovery is not logged")
	}
	if err := r.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	data, err := os.ReadFile(spillPath)
	if err != nil {
		t.Fatal(err)
	}
	if events, damaged := decodeSpill(data); len(events) != 1 || len(damaged) != 0 || events[0].rec.Event.DriverLicense != shift.Driver {
		t.Fatalf("spill file after the stop: %+v, damaged %+v", events, damaged)
	}
}

// TestSpillFileUnreadableAtStart: a spill file that cannot be read at
// start (a directory at its path) does not keep the agent from running,
// and is left untouched; status says why nothing is spilled.
func TestSpillFileUnreadableAtStart(t *testing.T) {
	var spillPath string
	r := startDaemon(t, nil, func(c *config.Config, _ *punchsim.Server, _ *metersim.Options) {
		spillPath = c.Outbox.Path + SpillSuffix
		if err := os.MkdirAll(filepath.Join(spillPath, "kept"), 0o700); err != nil {
			t.Fatal(err)
		}
	})
	s := metersim.Shift{Driver: "42108319880906011X", Trips: 3, At: time.Now().Truncate(time.Minute)}
	if res, err := r.meter.SignIn(context.Background(), s); err != nil || !res.OK() {
		t.Fatalf("sign-in: %+v %v", res, err)
	}
	waitAccepted(t, r.srv, 1)
	st, err := r.d.Status(context.Background())
	if err != nil || !strings.Contains(st.Held.SpillError, "could not be read at start") {
		t.Errorf("status %+v, %v: want the spill file's error", st.Held, err)
	}
	if !strings.Contains(r.logs.String(), "spill file not readable") {
		t.Errorf("not logged")
	}
	if _, err := os.Stat(filepath.Join(spillPath, "kept")); err != nil {
		t.Errorf("the unreadable spill path was touched: %v", err)
	}
}
