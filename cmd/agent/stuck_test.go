package main

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"taxi-agent/internal/admin"
	"taxi-agent/internal/meter"
	"taxi-agent/internal/metersim"
	"taxi-agent/internal/outbox"
	"taxi-agent/internal/punchsim"
	"taxi-agent/internal/testsupport"
	"taxi-agent/test/harness"
)

// notifyLog records what the daemon tells systemd, with the time.
type notifyLog struct {
	mu   sync.Mutex
	msgs []string
	at   []time.Time
}

func listenNotify(t *testing.T) *notifyLog {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", sock)
	n := &notifyLog{}
	go func() {
		buf := make([]byte, 256)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.msgs, n.at = append(n.msgs, string(buf[:k])), append(n.at, time.Now())
			n.mu.Unlock()
		}
	}()
	return n
}

// pings counts WATCHDOG=1 between from and to.
func (n *notifyLog) pings(from, to time.Time) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := 0
	for i, m := range n.msgs {
		if m == "WATCHDOG=1" && !n.at[i].Before(from) && n.at[i].Before(to) {
			c++
		}
	}
	return c
}

func (n *notifyLog) has(msg string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, m := range n.msgs {
		if m == msg {
			return true
		}
	}
	return false
}

// TestStuckCommitStopsWatchdog puts the outbox on a real file system and
// freezes it, so that the commit of the next sign-out blocks in the
// kernel. Within outbox.commit_timeout (1 s here) the watchdog pings stop,
// `status` (over the socket, from memory) says "storage stuck since", and
// the log says so once. Once thawed, the commit returns, the sign-out is
// acknowledged, the pings resume, and every acknowledged sign-out is in
// the file.
func TestStuckCommitStopsWatchdog(t *testing.T) {
	fs := testsupport.MountFreezable(t)
	srv := harness.StartEndpoint(t, punchsim.Options{})
	pty, err := metersim.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pty.Close() })
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "agent.toml")
	c := harness.NewConfig(dir, srv.Keys(), srv.URL(), pty.Path)
	c.Outbox.Path = filepath.Join(fs.Dir, "outbox.db")
	c.Outbox.CommitTimeout = time.Second
	harness.WriteConfig(t, cfgPath, c)

	notes := listenNotify(t)
	t.Setenv("WATCHDOG_USEC", "1000000") // pings every 500 ms
	t.Setenv("WATCHDOG_PID", "")
	ctx, cancel := context.WithCancel(context.Background())
	var stderr testsupport.SyncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"run", "-config", cfgPath}, &bytes.Buffer{}, &stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("run did not return after cancel")
		}
	})
	t.Cleanup(func() { // runs first: never leave the file system frozen
		if err := fs.Thaw(); err != nil {
			t.Error(err)
		}
	})

	m := metersim.New(pty.Master, metersim.Options{AnswerTimeout: 500 * time.Millisecond, MaxSends: 100})
	t.Cleanup(func() { m.Close() })
	signOut := func(ctx context.Context, i int) (metersim.Result, error) {
		at := time.Now().Add(time.Duration(-10+i) * time.Minute).In(meter.Zone).Truncate(time.Minute)
		return m.SignOut(ctx, metersim.Shift{Driver: "42108319880906011X", Trips: uint32(100 + i), At: at.Add(-time.Hour), End: at})
	}
	for i := range 3 {
		ctxOne, cancelOne := context.WithTimeout(ctx, 10*time.Second)
		res, err := signOut(ctxOne, i)
		cancelOne()
		if err != nil || !res.OK() {
			t.Fatalf("sign-out %d before the freeze: %+v, %v\n%s", i, res, err, stderr.String())
		}
	}
	if !notes.has("READY=1") {
		t.Fatalf("no READY=1")
	}

	frozen := time.Now()
	fs.Freeze(t)
	stuck := make(chan error, 1)
	go func() {
		res, err := signOut(ctx, 3)
		if err == nil && !res.OK() {
			err = context.DeadlineExceeded
		}
		stuck <- err
	}()

	// Stuck once the sign-out's commit has waited commit_timeout; the
	// sign-out reaches the agent when this machine gets round to it.
	// Status answers all along: asked while the commit is in flight but
	// not yet stuck, it must not wait in the outbox's read for the thaw.
	var st admin.Status
	asked := 0
	testsupport.WaitFor(t, 20*time.Second, "status to report the stuck commit", func() bool {
		cl := admin.Dial(c.Admin.Socket)
		cl.Timeout = 5 * time.Second
		var err error
		asked++
		if st, err = cl.Status(context.Background()); err != nil {
			t.Fatalf("status %d while the file system is frozen: %v", asked, err)
		}
		return !st.StorageStuckSince.IsZero()
	})
	t.Logf("status asked %d times until it said stuck", asked)
	// The stuck commit may be the uploader's, begun a moment before the
	// freeze caught it: a healthy commit lasts milliseconds.
	since := st.StorageStuckSince
	if since.Before(frozen.Add(-time.Second)) {
		t.Errorf("status while stuck: storage_stuck_since %v, want about the freeze at %v", since, frozen)
	}
	out, _, err := runCLI(t, "status", "-config", cfgPath)
	if err != nil || !strings.Contains(out, "STUCK since") {
		t.Errorf("agent status while stuck (%v):\n%s", err, out)
	}
	// No ping once the commit has been in flight for commit_timeout and a
	// tick of the watchdog (500 ms) has passed, plus 100 ms for a ping
	// sent just before to arrive.
	quiet := since.Add(c.Outbox.CommitTimeout + 600*time.Millisecond)
	time.Sleep(time.Until(quiet.Add(2 * time.Second)))
	if n := notes.pings(quiet, time.Now()); n != 0 {
		t.Errorf("%d watchdog pings more than %s into the stuck commit, want none", n, quiet.Sub(since))
	}
	if n := strings.Count(stderr.String(), "storage stuck"); n != 1 {
		t.Errorf("the log says storage stuck %d times, want once:\n%s", n, stderr.String())
	}
	select {
	case err := <-stuck:
		t.Fatalf("the sign-out was answered while the file system was frozen (%v)", err)
	default:
	}

	thawed := time.Now()
	if err := fs.Thaw(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-stuck:
		if err != nil {
			t.Fatalf("sign-out after the thaw: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the sign-out was not acknowledged after the thaw")
	}
	testsupport.WaitFor(t, 10*time.Second, "a watchdog ping after the thaw", func() bool { return notes.pings(thawed, time.Now()) > 0 })
	if !strings.Contains(stderr.String(), "storage answers again") {
		t.Errorf("the log does not say storage answers again:\n%s", stderr.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	done <- nil // for the cleanup
	ob, err := outbox.Open(c.Outbox.Path, outbox.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	s, err := ob.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if total := s.Pending + s.Dead + s.Delivered; total != 4 {
		t.Errorf("%d records in the outbox, want the 4 acknowledged sign-outs (%+v)", total, s)
	}
}
