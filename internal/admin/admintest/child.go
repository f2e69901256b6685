package admintest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"taxi-agent/internal/outbox"
	"taxi-agent/internal/testsupport"
)

const envHold = "ADMINTEST_HOLD_OUTBOX"

// ChildMain runs a helper child's job when the test binary was started as
// one (by HoldLock) and then exits; otherwise it returns. Call it first in
// TestMain.
func ChildMain() {
	path := os.Getenv(envHold)
	if path == "" {
		return
	}
	ob, err := outbox.Open(path, outbox.Options{})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	io.Copy(io.Discard, os.Stdin) // hold until the parent closes stdin
	ob.Close()
	os.Exit(0)
}

// HoldLock starts a child process (this test binary, see ChildMain) that
// opens the outbox at path read-write, as a running daemon does, and holds
// it until cleanup. It returns the child's pid.
func HoldLock(t testing.TB, path string) int {
	t.Helper()
	cmd, stdin, out := testsupport.StartChild(t, envHold+"="+path, NoExitDelay)
	t.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "locked" {
		t.Fatalf("lock holder: %q %v", line, err)
	}
	return cmd.Process.Pid
}

// ChildBinary copies the running test binary into a directory any user
// can read, so that a child started as another user (SysProcAttr
// Credential) can execute it; go test's own build directory is private.
func ChildBinary(t testing.TB) string {
	t.Helper()
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst := filepath.Join(ShortTempDir(t), "child.test")
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, src); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// RequireRoot skips a test that must start children as other users when
// the test does not run as root; it is not skipped when it can run.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to start a child process as another uid (run the tests as root, as CI does)")
	}
}

// NoExitDelay is the environment entry that stops the race detector of a
// child test binary from sleeping a second at exit.
const NoExitDelay = "GORACE=atexit_sleep_ms=0"
