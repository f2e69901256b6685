package testsupport

import (
	"testing"
	"time"
)

// pollEvery is how often Eventually and WaitFor check their condition.
const pollEvery = 10 * time.Millisecond

// Eventually calls check until it returns "" and fails the test with
// check's last complaint if that has not happened within the given time.
func Eventually(tb testing.TB, within time.Duration, check func() string) {
	tb.Helper()
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
