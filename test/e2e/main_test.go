// Package e2e runs the agent binary end to end: built once, with the race
// detector when the tests are, started with a config file against a
// simulated taximeter on a pseudo-terminal and the fake WeChat Pay
// endpoint on loopback, and stopped with SIGTERM.
package e2e

import (
	"testing"

	"taxi-agent/test/harness"
)

var agentBin string

func TestMain(m *testing.M) {
	harness.Main(m, harness.Race, &agentBin)
}
