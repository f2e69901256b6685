// Package crash is the crash suite: the real agent binary is killed with
// SIGKILL at random moments while a simulated meter reports shifts and a
// slow fake endpoint takes their punches, then restarted, over and over.
// At the end every event the meter was answered 0x90 for must have been
// delivered, in order, and at most one punch per kill delivered twice.
//
// The short form (50 cycles) runs with every `go test ./...`; the long
// form is
//
//	go test -v -run Crash -timeout 60m ./test/crash -crash.cycles=1000
package crash

import (
	"testing"

	"taxi-agent/test/harness"
)

var agentBin string

func TestMain(m *testing.M) {
	// The agent's durability does not depend on the race detector, and a
	// race build starts several times slower: many restarts want speed.
	harness.Main(m, false, &agentBin)
}
