package admin_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"

	"taxi-agent/internal/admin"
	"taxi-agent/internal/admin/admintest"
)

func TestListenMakesSocket0660(t *testing.T) {
	sock := filepath.Join(admintest.ShortTempDir(t), "run", "admin.sock")
	ln, err := admin.Listen(sock)
	must(t, err)
	defer ln.Close()
	fi, err := os.Stat(sock)
	must(t, err)
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v, want socket 0660", fi.Mode())
	}
	di, err := os.Stat(filepath.Dir(sock))
	must(t, err)
	if di.Mode().Perm() != 0o750 {
		t.Errorf("created directory mode %v, want 0750", di.Mode().Perm())
	}
}

func TestListenLeavesLiveDaemonAlone(t *testing.T) {
	sock := filepath.Join(admintest.ShortTempDir(t), "admin.sock")
	ln, err := admin.Listen(sock)
	must(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if _, err := admin.Listen(sock); !errors.Is(err, admin.ErrSocketInUse) {
		t.Fatalf("second Listen: %v, want ErrSocketInUse", err)
	}
	// The live daemon's socket is still there and answers.
	c, err := net.Dial("unix", sock)
	must(t, err)
	c.Close()
}

func TestListenReplacesStaleSocket(t *testing.T) {
	sock := filepath.Join(admintest.ShortTempDir(t), "admin.sock")
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	must(t, err)
	old.SetUnlinkOnClose(false)
	old.Close() // a daemon killed with SIGKILL leaves this behind
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	ln, err := admin.Listen(sock)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := net.Dial("unix", sock)
	must(t, err)
	c.Close()
}

func TestListenRefusesToDeleteAFile(t *testing.T) {
	path := filepath.Join(admintest.ShortTempDir(t), "admin.sock")
	must(t, os.WriteFile(path, []byte("not a socket"), 0o644))
	if _, err := admin.Listen(path); !errors.Is(err, admin.ErrNotSocket) {
		t.Fatalf("Listen over a file: %v, want ErrNotSocket", err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "not a socket" {
		t.Fatalf("file touched: %q %v", b, err)
	}
}
