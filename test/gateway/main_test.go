// Package gateway tests taxi-gateway as shipped: the real binary, built
// once (with the race detector when the tests are), enrolling terminals
// with its own CLI, serving mutual TLS on loopback in front of the
// signature-checking fake of WeChat Pay, with the real agent binary as
// the terminal where a terminal is needed.
package gateway

import (
	"fmt"
	"os"
	"testing"

	"taxi-agent/test/harness"
)

var gatewayBin, agentBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "taxi-gateway-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	gatewayBin, err = harness.BuildCommand(dir, harness.GatewayPackage, "taxi-gateway", harness.Race)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	agentBin, err = harness.Build(dir, harness.Race)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
