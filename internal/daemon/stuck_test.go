package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"taxi-agent/internal/admin"
	"taxi-agent/internal/config"
	"taxi-agent/internal/metersim"
	"taxi-agent/internal/punch"
	"taxi-agent/internal/testsupport"
	"taxi-agent/test/harness"
)

// TestSignInSurvivesStuckDiskAndRestart is a watchdog restart while the
// outbox's disk does not answer: the outbox is on a file system the test
// freezes, the runtime directory ($RUNTIME_DIRECTORY, tmpfs under
// systemd) is not. A sign-in arrives while frozen: its commit blocks in
// the kernel, so it is held, spilled to the runtime directory, and the
// meter link reads on (the sign-out after it is answered 0xFF at once, not
// when the disk comes back). The agent is then killed, as the watchdog
// does, and the disk thawed. The next start stores the sign-in from the
// runtime spill file and delivers it once, before the sign-out.
func TestSignInSurvivesStuckDiskAndRestart(t *testing.T) {
	testsupport.SkipIfEmulated(t, "the child daemon under the emulator is too slow for the link's timing")
	fs := testsupport.MountFreezable(t)
	runtime := t.TempDir()
	t.Setenv("RUNTIME_DIRECTORY", runtime)
	c := startChild(t, func(cfg *config.Config) { cfg.Outbox.Path = filepath.Join(fs.Dir, "outbox.db") }, fs.Thaw)
	cfg := c.cfg
	client := admin.Dial(cfg.Admin.Socket)
	defer client.Close()
	m := metersim.New(c.pty.Master, metersim.Options{AnswerTimeout: 3 * time.Second, MaxSends: 1})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	fs.Freeze(t)
	frozen := time.Now()
	shift := harness.ShiftOf(1, time.Date(2001, 1, 1, 8, 0, 0, 0, time.UTC))
	if res, err := m.SignIn(ctx, shift); err != nil || !res.Done {
		t.Fatalf("sign-in while frozen: %+v %v", res, err)
	}
	res, _ := m.SignOut(ctx, shift)
	if len(res.History) == 0 || res.History[0] != 0xFF || time.Since(frozen) > 10*time.Second {
		t.Fatalf("sign-out while frozen: answers %X after %s, want 0xFF within the store wait: the link must read on",
			res.History, time.Since(frozen).Round(time.Millisecond))
	}
	spill := RuntimeSpillPath(cfg.Outbox.Path, runtime)
	var st admin.Status
	testsupport.WaitFor(t, 10*time.Second, "the held sign-in in the runtime spill file", func() bool {
		var err error
		st, err = client.Status(ctx)
		return err == nil && st.Held.Count == 1 && st.Held.InRuntimeDir == 1
	})
	if st.Held.RuntimeSpillFile != spill || !strings.Contains(st.Held.Reason, "slow or stuck") {
		t.Errorf("status while frozen: %+v", st.Held)
	}
	data, err := os.ReadFile(spill)
	if err != nil {
		t.Fatal(err)
	}
	if events, damaged := decodeSpill(data); len(events) != 1 || len(damaged) != 0 ||
		events[0].rec.Event.DriverLicense != shift.Driver || events[0].rec.Event.Type != punch.SignIn {
		t.Fatalf("runtime spill file: %+v, damaged %+v", events, damaged)
	}

	// The watchdog's kill: the process dies once its stuck write returns
	// (the thaw, between the kill and the wait).
	c.kill(t)
	restartAccepting(t, cfg, c.srv, shift)
}
