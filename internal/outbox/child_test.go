package outbox

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"

	"taxi-agent/internal/testsupport"
)

// The test binary re-executes itself as a child process to hold the lock
// or to be killed mid-write. The environment says which.
const (
	envHold  = "OUTBOX_TEST_HOLD"  // path: open it, say "ready", hold it until stdin closes
	envCrash = "OUTBOX_TEST_CRASH" // path: enqueue and deliver until killed
)

func TestMain(m *testing.M) {
	if path := os.Getenv(envHold); path != "" {
		os.Exit(holdChild(path))
	}
	if path := os.Getenv(envCrash); path != "" {
		os.Exit(crashChild(path))
	}
	if path := os.Getenv(envOpen); path != "" {
		os.Exit(openChild(path, os.Getenv(envOpenRO) != ""))
	}
	os.Exit(m.Run())
}

func holdChild(path string) int {
	o, err := Open(path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stdout, "error", err)
		return 1
	}
	fmt.Fprintln(os.Stdout, "ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := o.Close(); err != nil {
		return 1
	}
	return 0
}

// startChild runs the test binary with env set and returns it with a
// line reader on its stdout.
func startChild(t *testing.T, env string) (*exec.Cmd, *bufio.Scanner, io.WriteCloser) {
	t.Helper()
	cmd, stdin, stdout := testsupport.StartChild(t, env)
	return cmd, bufio.NewScanner(stdout), stdin
}

// waitReady reads the child's first line, failing unless it is "ready".
func waitReady(t *testing.T, sc *bufio.Scanner) {
	t.Helper()
	done := make(chan string, 1)
	go func() {
		if sc.Scan() {
			done <- sc.Text()
		}
		close(done)
	}()
	select {
	case line := <-done:
		if line != "ready" {
			t.Fatalf("child said %q, want ready", line)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("child never got ready")
	}
}
