package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestDemoGateway runs `agent demo -gateway`: meter → agent → taxi-gateway
// → fake WeChat Pay, with a throwaway fleet CA, and expects the same
// outcome as in direct mode.
func TestDemoGateway(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo takes several seconds")
	}
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"demo", "-gateway"}, &stdout, &stderr); err != nil {
		t.Fatalf("demo failed: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	for _, want := range []string{"taxi-gateway on https://", "fleet CA", "delivered 7, dead-lettered 1",
		"FORGED 204", "did not verify at the gateway", "OK: every event"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, stdout.String())
		}
	}
}
