package gateway

import (
	"encoding/json"
	"testing"
	"time"

	"taxi-agent/internal/gateway"
	"taxi-agent/internal/punchsim"
	"taxi-agent/test/harness"
)

// TestStatusSeenAndNeverSeen: `taxi-gateway status` lists the terminal that
// punched with its last punch, the certificate issued and never used, and
// the revoked one.
func TestStatusSeenAndNeverSeen(t *testing.T) {
	ep := harness.StartEndpoint(t, punchsim.Options{})
	g := harness.NewGateway(t, gatewayBin, ep, 100)
	run := g.Start()
	active := g.Client(g.Enroll(harness.Plate))
	g.Enroll("粤B00002") // never connects
	g.Enroll("粤B00003")
	g.Cmd("revoke", "-dir", g.CADir, "-plate", "粤B00003")
	before := time.Now()
	if st, body, _, err := g.Punch(ctxT(t), active, punchBody(harness.Plate, 1, 1)); err != nil || st != 204 {
		t.Fatalf("punch: %d %s %v", st, body, err)
	}
	g.Stop(run) // saves what it has seen
	var rep struct {
		Seen      []gateway.Seen   `json:"seen"`
		NeverSeen []gateway.Issued `json:"never_seen"`
		Revoked   []string         `json:"revoked"`
	}
	if err := json.Unmarshal([]byte(g.Cmd("status", "-config", g.ConfigPath, "-json")), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Seen) != 1 || rep.Seen[0].Plate != harness.Plate || rep.Seen[0].LastPunch.Before(before.Add(-time.Second)) ||
		rep.Seen[0].LastOutcome != gateway.OutcomeDelivered {
		t.Errorf("seen: %+v", rep.Seen)
	}
	if len(rep.NeverSeen) != 1 || rep.NeverSeen[0].Plate != "粤B00002" {
		t.Errorf("never seen: %+v", rep.NeverSeen)
	}
	if len(rep.Revoked) != 1 {
		t.Errorf("revoked: %+v", rep.Revoked)
	}
}
