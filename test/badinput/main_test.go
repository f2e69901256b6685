// Package badinput feeds the agent binary bad input of every kind it can
// meet in the field and checks that it keeps working: a corrupt or
// truncated outbox file, an outbox that fills up while the network is
// down, and noise and broken frames on the serial line. The frame decoder
// and the config parser are fuzzed in their own packages (FuzzDecode,
// FuzzParse); scripts/test.sh runs both for a short time.
package badinput

import (
	"testing"

	"taxi-agent/test/harness"
)

var agentBin string

func TestMain(m *testing.M) {
	harness.Main(m, harness.Race, &agentBin)
}
