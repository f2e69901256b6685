package testsupport

import (
	"testing"
	"time"
)

// pollEvery is how often Eventually and WaitFor check their condition.
const pollEvery = 10 * time.Millisecond

// emulatorPatience is how many times longer a wait for real work may take
// under the user-mode emulator: there the test binary, the fake endpoint
// and the agent all run on an emulated CPU, four test binaries at a time
// (scripts/test.sh), and signatures, TLS handshakes and whole exchanges
// were measured 5 to 20 times slower than natively.
const emulatorPatience = 5

// Patience returns d, the bound of a wait for real work (a hang detector,
// not a latency requirement), scaled for the CPU the test runs on: d
// natively, 5·d under the emulator (Emulator).
func Patience(d time.Duration) time.Duration {
	if Emulator() != "" {
		return emulatorPatience * d
	}
	return d
}

// Eventually calls check until it returns "" and fails the test with
// check's last complaint if that has not happened within the given time
// (Patience(within) under the emulator).
func Eventually(tb testing.TB, within time.Duration, check func() string) {
	tb.Helper()
	within = Patience(within)
	deadline := time.Now().Add(within)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("after %s: %s", within, msg)
		}
		time.Sleep(pollEvery)
	}
}

// WaitFor waits up to within for cond to hold and fails the test, naming
// what it waited for, if it does not.
func WaitFor(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	Eventually(tb, within, func() string {
		if cond() {
			return ""
		}
		return "timed out waiting for " + what
	})
}
