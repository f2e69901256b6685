package admin_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"taxi-agent/internal/admin"
	"taxi-agent/internal/admin/admintest"
	"taxi-agent/internal/outbox"
	"taxi-agent/internal/testsupport"
)

func TestConnectPrefersTheDaemon(t *testing.T) {
	d := startDaemon(t, nil)
	s, err := admin.Connect(context.Background(), d.sock, d.ob.Path(), outbox.Options{ReadOnly: true})
	must(t, err)
	defer s.Close()
	if s.Daemon == nil || s.NoDaemon != nil || s.DaemonPID == 0 {
		t.Fatalf("daemon answers but session is %+v", s)
	}
	// Changes go through the daemon even though the file is locked by it.
	must(t, s.Outbox.Retry(admintest.IDDead))
}

func TestConnectFallsBackToTheFile(t *testing.T) {
	path := admintest.NewOutbox(t)
	sock := filepath.Join(admintest.ShortTempDir(t), "admin.sock")
	ctx := context.Background()

	ro, err := admin.Connect(ctx, sock, path, outbox.Options{ReadOnly: true})
	must(t, err)
	if ro.Daemon != nil || !errors.Is(ro.NoDaemon, admin.ErrNoDaemon) {
		t.Fatalf("no daemon but session is %+v", ro)
	}
	st, err := ro.Status(ctx)
	must(t, err)
	if st.Outbox.Pending != 2 || st.Outbox.Dead != 1 || st.Outbox.Delivered != 2 {
		t.Errorf("status from the file: %+v", st.Outbox)
	}
	if err := ro.Outbox.Retry(admintest.IDDead); !errors.Is(err, outbox.ErrReadOnly) {
		t.Errorf("Retry on a read-only open: %v, want ErrReadOnly", err)
	}
	must(t, ro.Close())

	rw, err := admin.Connect(ctx, sock, path, outbox.Options{})
	must(t, err)
	must(t, rw.Outbox.Retry(admintest.IDDead))
	must(t, rw.Close())
}

func TestConnectSaysWhyNeitherAnswers(t *testing.T) {
	ctx := context.Background()
	sock := filepath.Join(admintest.ShortTempDir(t), "admin.sock")

	t.Run("locked", func(t *testing.T) {
		path := admintest.NewOutbox(t)
		pid := admintest.HoldLock(t, path)
		_, err := admin.Connect(ctx, sock, path, outbox.Options{ReadOnly: true})
		holder := filepath.Base(testsupport.Command(os.Args[0]).Path) // the emulator, when the tests run under one
		want := fmt.Sprintf("daemon not running (no answer on %s) and %s is locked by pid %d (%s)", sock, path, pid,
			holder[:min(15, len(holder))])
		if err == nil || err.Error() != want {
			t.Fatalf("locked file: %v\nwant %q", err, want)
		}
		if !errors.Is(err, outbox.ErrLocked) || !errors.Is(err, admin.ErrNoDaemon) {
			t.Errorf("locked file error does not wrap ErrLocked and ErrNoDaemon: %v", err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "outbox.db")
		_, err := admin.Connect(ctx, sock, path, outbox.Options{})
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "no outbox at "+path) {
			t.Fatalf("missing file: %v", err)
		}
		if _, statErr := admin.Connect(ctx, sock, path, outbox.Options{}); statErr == nil {
			t.Fatal("a read-write connect created the missing file")
		}
	})
}

// TestConnectAsRootKeepsTheOwner: a technician running retry as root on a
// corrupt file (the daemon stopped) gets it moved aside and a fresh one
// started, which the daemon's user must still be able to open.
func TestConnectAsRootKeepsTheOwner(t *testing.T) {
	admintest.RequireRoot(t)
	path := filepath.Join(t.TempDir(), "outbox.db")
	must(t, os.WriteFile(path, bytes.Repeat([]byte("not a bolt file "), 1024), 0o600))
	must(t, os.Chown(path, 65534, 65534))
	sock := filepath.Join(admintest.ShortTempDir(t), "admin.sock")
	s, err := admin.Connect(context.Background(), sock, path, outbox.Options{})
	must(t, err)
	defer s.Close()
	if !errors.Is(s.Quarantined, outbox.ErrCorrupt) {
		t.Fatalf("corrupt file not quarantined: %v", s.Quarantined)
	}
	fi, err := os.Stat(path)
	must(t, err)
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 65534 || st.Gid != 65534 {
		t.Errorf("fresh outbox owned by %d:%d, want the old file's 65534:65534", st.Uid, st.Gid)
	}
}
