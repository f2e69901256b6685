// Package testsupport holds helpers that the tests of several packages
// share. Only tests import it.
package testsupport

import (
	"context"
	"io"
	"os"
	"os/exec"
	"testing"
)

// EmulatorEnv names the environment variable that holds the user-mode
// emulator the test binary itself runs under (for example
// /usr/bin/qemu-arm-static for GOARCH=arm), set by scripts/test.sh through
// go test -exec. Empty or unset: the tests run natively.
const EmulatorEnv = "TAXI_AGENT_TEST_EMULATOR"

// Emulator returns the emulator the tests run under, or "" when native.
func Emulator() string { return os.Getenv(EmulatorEnv) }

// Command is exec.Command for a binary built for the same architecture as
// the running test, such as the test binary started again as a child: under
// an emulator it runs the binary through that emulator, since the kernel
// cannot execute it directly ("exec format error").
func Command(path string, args ...string) *exec.Cmd {
	if emu := Emulator(); emu != "" {
		return exec.Command(emu, append([]string{path}, args...)...)
	}
	return exec.Command(path, args...)
}

// CommandContext is Command with a context, as exec.CommandContext.
func CommandContext(ctx context.Context, path string, args ...string) *exec.Cmd {
	if emu := Emulator(); emu != "" {
		return exec.CommandContext(ctx, emu, append([]string{path}, args...)...)
	}
	return exec.CommandContext(ctx, path, args...)
}

// SkipIfEmulated skips a test that cannot run under a user-mode emulator,
// saying why.
func SkipIfEmulated(t testing.TB, why string) {
	t.Helper()
	if emu := Emulator(); emu != "" {
		t.Skipf("skipping under %s: %s", emu, why)
	}
}

// StartChild starts the running test binary again as a child process
// (through the emulator, if any) that runs no test, with env added to the
// environment: the child's TestMain does the job env names. Its stderr is
// the test's; the caller reads stdout and may write stdin.
func StartChild(tb testing.TB, env ...string) (cmd *exec.Cmd, stdin io.WriteCloser, stdout io.Reader) {
	tb.Helper()
	cmd = Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err = cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	return cmd, stdin, stdout
}
