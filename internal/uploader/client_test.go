package uploader

import (
	"testing"

	"taxi-agent/internal/punchsim"
)

// TestClientSendsAndClassifies: the exported Client is the drain loop's
// exchange: a verified 204 is nil, a setup code is Held, an event code is
// Rejected, with WeChat Pay's answer.
func TestClientSendsAndClassifies(t *testing.T) {
	sim := newSim(t, punchsim.Options{})
	c, err := NewClient(Config{BaseURL: sim.URL(), CAFile: testKeys.CAFile, TransportRetries: -1}, publicKeyAuth(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	if derr := c.Send(t.Context(), event(1)); derr != nil {
		t.Fatalf("Send: %v", derr)
	}
	sim.Inject(punchsim.Fault{Kind: punchsim.Forbidden}, punchsim.Fault{Kind: punchsim.BadRequest})
	if derr := c.Send(t.Context(), event(2)); derr == nil || !derr.Held() || derr.Code != "NO_AUTH" || derr.RequestID == "" {
		t.Fatalf("403 NO_AUTH: %+v", derr)
	}
	if derr := c.Send(t.Context(), event(3)); derr == nil || !derr.Rejected() || derr.Code != "PARAM_ERROR" {
		t.Fatalf("400 PARAM_ERROR: %+v", derr)
	}
}
