// Package fault is the fault suite: the fake WeChat Pay endpoint goes
// through every misbehaviour the agent must survive (an outage, 500s, 429
// with Retry-After, reset connections, 10-second stalls, answers with a
// bad or missing signature or a SIGNTEST probe) while the simulated meter
// keeps signing drivers in and out, and the agent binary must lose
// nothing, keep the order, and never count an unverified answer as a
// delivery.
//
//	go test -v ./test/fault -fault.rounds=5    # a longer run
package fault

import (
	"testing"

	"taxi-agent/test/harness"
)

var agentBin string

func TestMain(m *testing.M) {
	harness.Main(m, harness.Race, &agentBin)
}
