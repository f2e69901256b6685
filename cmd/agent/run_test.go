package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"taxi-agent/internal/admin/admintest"
	"taxi-agent/internal/metersim"
	"taxi-agent/internal/punchsim"
	"taxi-agent/test/harness"
)

// writeRunConfig writes a config for a daemon against a fake endpoint and a
// pseudo-terminal, both real, and returns its path.
func writeRunConfig(t *testing.T) string {
	t.Helper()
	srv := harness.StartEndpoint(t, punchsim.Options{})
	pty, err := metersim.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pty.Close() })
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.toml")
	harness.WriteConfig(t, path, harness.NewConfig(dir, srv.Keys(), srv.URL(), pty.Path))
	return path
}

// TestRunNotifiesSystemd runs the daemon under a NOTIFY_SOCKET the test
// listens on, as systemd would, and expects READY=1, then WATCHDOG=1 pings,
// then STOPPING=1 and a clean exit on cancel.
func TestRunNotifiesSystemd(t *testing.T) {
	cfg := writeRunConfig(t)
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "200000") // pings every 100 ms
	t.Setenv("WATCHDOG_PID", fmt.Sprint(os.Getpid()))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"run", "-config", cfg}, &bytes.Buffer{}, &stderr) }()

	read := func() string {
		t.Helper()
		buf := make([]byte, 256)
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no notify message: %v\nagent log:\n%s", err, stderr.String())
		}
		return string(buf[:n])
	}
	if got := read(); got != "READY=1" {
		t.Fatalf("first notify = %q, want READY=1", got)
	}
	for range 2 {
		if got := read(); got != "WATCHDOG=1" {
			t.Fatalf("notify = %q, want WATCHDOG=1", got)
		}
	}
	cancel()
	for {
		got := read()
		if got == "STOPPING=1" {
			break
		}
		if got != "WATCHDOG=1" {
			t.Fatalf("notify = %q while stopping", got)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	if !strings.Contains(stderr.String(), "stopped cleanly") {
		t.Errorf("no clean-stop log line:\n%s", stderr.String())
	}
}

func TestRunRefusesBadConfigWithExit2(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.toml")
	os.WriteFile(path, []byte("[vehicle]\nplate_number = \"\"\n[bogus]\n"), 0o644)
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"run", "-config", path}, &bytes.Buffer{}, &stderr)
	if code := exitCode(err, &stderr); code != 2 {
		t.Fatalf("exit %d, want 2 (%v)", code, err)
	}
	if !strings.Contains(stderr.String(), "bogus: unknown section") {
		t.Errorf("problem not named:\n%s", stderr.String())
	}
}

// TestRunNamesTheOutboxOnce: an outbox held by another process is named
// once, not as "open outbox: open outbox …".
func TestRunNamesTheOutboxOnce(t *testing.T) {
	cfg := writeRunConfig(t)
	path := filepath.Join(filepath.Dir(cfg), "outbox.db")
	pid := admintest.HoldLock(t, path)
	err := run(context.Background(), []string{"run", "-config", cfg}, &bytes.Buffer{}, &bytes.Buffer{})
	want := fmt.Sprintf("open outbox %s: locked by pid %d", path, pid)
	if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Count(err.Error(), "open outbox") != 1 {
		t.Fatalf("run on a locked outbox: %v\nwant it to start %q and say open outbox once", err, want)
	}
}
