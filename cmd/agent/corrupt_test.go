package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"taxi-agent/internal/admin/admintest"
	"taxi-agent/internal/testsupport"
)

// TestCLIOnLoopedOutbox is the field report with the daemon stopped: the
// pending root page points at itself. `outbox ls` and `status` used to
// hang with memory growing; they must say the file is corrupt, name the
// page, say what to do, exit non-zero and leave the file where it is.
func TestCLIOnLoopedOutbox(t *testing.T) {
	e := newEnv(t, false)
	if err := os.Remove(e.outbox); err != nil {
		t.Fatal(err)
	}
	page := admintest.LoopedFile(t, e.outbox, 3000)
	for _, args := range [][]string{
		{"outbox", "ls", "-config", e.config},
		{"outbox", "show", "1", "-config", e.config},
		{"outbox", "export", "-config", e.config},
		{"status", "-config", e.config},
	} {
		t.Run(strings.Join(args[:len(args)-2], " "), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			a, _ := json.Marshal(args)
			cmd := testsupport.CommandContext(ctx, os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), envArgs+"="+string(a), admintest.NoExitDelay)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			start := time.Now()
			err := cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("still running after 10 s")
			}
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Errorf("exit: %v, want status 1", err)
			}
			t.Logf("%v: %s", time.Since(start), stderr.String())
			for _, want := range []string{"corrupt", fmt.Sprintf("page %d", page), "systemctl start taxi-agent", ".corrupt-"} {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr does not say %q:\n%s", want, stderr.String())
				}
			}
			if m, _ := filepath.Glob(e.outbox + ".corrupt-*"); len(m) != 0 {
				t.Errorf("a read-only command moved the file: %v", m)
			}
		})
	}
}

// TestRunOnLoopedOutbox is the field report under `agent run`: it never
// reached READY, its memory growing. It must move the file aside as
// .corrupt-* and be READY within 2 s, saying so in its log.
func TestRunOnLoopedOutbox(t *testing.T) {
	cfg := writeRunConfig(t)
	path := filepath.Join(filepath.Dir(cfg), "outbox.db")
	page := admintest.LoopedFile(t, path, 3000)
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)

	ctx, cancel := context.WithCancel(context.Background())
	var stderr testsupport.SyncBuffer
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- run(ctx, []string{"run", "-config", cfg}, &bytes.Buffer{}, &stderr) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("run did not return after cancel")
		}
	}()
	buf := make([]byte, 256)
	conn.SetReadDeadline(start.Add(2 * time.Second))
	n, err := conn.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("no READY=1 within 2 s (%q, %v)\nagent log:\n%s", buf[:n], err, stderr.String())
	}
	t.Logf("READY after %v", time.Since(start))
	if m, _ := filepath.Glob(path + ".corrupt-*"); len(m) != 1 {
		t.Fatalf("moved aside: %v, want one file", m)
	}
	if log := stderr.String(); !strings.Contains(log, "moved aside") || !strings.Contains(log, fmt.Sprintf("page %d", page)) {
		t.Errorf("the log does not say the file was moved aside, naming page %d:\n%s", page, log)
	}
}
