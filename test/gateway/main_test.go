// Package gateway tests taxi-gateway as shipped: the real binary, built
// once (with the race detector when the tests are), enrolling terminals
// with its own CLI, serving mutual TLS on loopback in front of the
// signature-checking fake of WeChat Pay, with the real agent binary as
// the terminal where a terminal is needed.
package gateway

import (
	"testing"

	"taxi-agent/internal/testsupport"
	"taxi-agent/test/harness"
)

var gatewayBin, agentBin string

func TestMain(m *testing.M) {
	testsupport.MainWithDir(m, "taxi-gateway-bin-", func(dir string) (err error) {
		gatewayBin, err = harness.BuildCommand(dir, harness.GatewayPackage, "taxi-gateway", harness.Race)
		if err != nil {
			return err
		}
		agentBin, err = harness.Build(dir, harness.Race)
		return err
	})
}
