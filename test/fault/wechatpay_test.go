package fault

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"taxi-agent/internal/outbox"
	"taxi-agent/internal/punchsim"
	"taxi-agent/internal/testsupport"
	"taxi-agent/test/harness"
)

// agentStatus runs `agent status -json` against the running agent.
func agentStatus(t *testing.T, rig *harness.Rig) map[string]any {
	t.Helper()
	out, err := exec.Command(agentBin, "status", "-config", rig.ConfigPath, "-json").Output()
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	var st map[string]any
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("status json: %v\n%s", err, out)
	}
	return st
}

// field walks a JSON object by keys.
func field(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// TestWeChatPayChangesWhileDriving runs the agent binary, configured with
// the public key and the APIv3 key (downloader), through WeChat Pay's
// changes while the meter keeps signing drivers in and out: a platform
// certificate rotation, the merchant's switch to the public key, a WeChat
// Pay clock 10 minutes ahead of the terminal's, and a systemic refusal
// (INVALID_REQUEST about the serial) that holds the queue until fixed.
// Nothing is lost, nothing dead-lettered, nothing sent twice; then a
// restart with the download API unreachable still verifies certificate-
// signed answers from the stored set.
func TestWeChatPayChangesWhileDriving(t *testing.T) {
	rig := harness.NewRig(t, agentBin, harness.RigOptions{})
	rig.Config.WeChatPay.APIv3KeyFile = rig.Endpoint.Keys().APIv3KeyFile
	rig.Config.Uploader.HeldRetry = time.Second
	harness.WriteConfig(t, rig.ConfigPath, rig.Config)
	sim := rig.Endpoint
	sim.SetAnswerSigner(punchsim.SignWithCertificate)

	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	a := rig.Start()
	var led harness.Ledger
	shifts := harness.StartShifts(ctx, rig.Meter, &led, harness.ShiftsOptions{First: 1, MaxPause: 200 * time.Millisecond, Seed: 2})
	more := func(what string) {
		t.Helper()
		n := len(sim.Accepted())
		testsupport.WaitFor(t, time.Minute, what, func() bool { return len(sim.Accepted()) >= n+3 })
	}
	more("deliveries with the first certificate")

	if _, err := sim.RotatePlatformCert(); err != nil {
		t.Fatal(err)
	}
	more("deliveries after the rotation")

	sim.SetAnswerSigner(punchsim.SignWithPublicKey)
	more("deliveries after the switch to the public key")

	before := len(sim.Exchanges())
	sim.SetClockSkew(10 * time.Minute)
	more("deliveries with WeChat Pay's clock 10 minutes ahead")
	refused := 0
	for _, x := range sim.Exchanges()[before:] {
		if x.Rejection == punchsim.RejectTimestamp {
			refused++
		}
	}
	if refused > 1 {
		t.Errorf("%d requests refused for their timestamp, want at most 1", refused)
	}
	st := agentStatus(t, rig)
	if off, _ := field(st, "uploader", "auth", "server_time", "offset_seconds").(float64); off < 598 || off > 602 {
		t.Errorf("status offset %v, want about 600", field(st, "uploader", "auth", "server_time"))
	}

	sim.SetFaults(func(punchsim.Exchange) punchsim.Fault { return punchsim.Fault{Kind: punchsim.InvalidSerial} })
	var held map[string]any
	testsupport.WaitFor(t, time.Minute, "status says why the queue is held", func() bool {
		held, _ = field(agentStatus(t, rig), "uploader", "held_answer").(map[string]any)
		return held != nil
	})
	if held["code"] != "INVALID_REQUEST" || held["request_id"] == "" || !strings.Contains(held["message"].(string), "Wechatpay-Serial") {
		t.Errorf("held answer %v", held)
	}
	time.Sleep(500 * time.Millisecond) // events pile up while held
	sim.SetFaults(nil)
	more("deliveries after the fix")

	if err := shifts.Stop(); err != nil {
		t.Fatalf("meter: %v", err)
	}
	if err := rig.WaitDelivered(ctx, led.Acked()); err != nil {
		t.Fatal(err)
	}
	rig.Stop(a)
	tally := harness.Reconcile(led.Acked(), sim.Accepted())
	if !tally.OK() || tally.Unacked != 0 || tally.Duplicates != 0 {
		t.Fatalf("%s", tally)
	}
	for _, r := range rig.Records() {
		if r.State != outbox.Delivered {
			t.Errorf("record %d is %s", r.ID, r.State)
		}
	}

	// Restart with the download API unreachable: answers signed by the
	// rotated certificate verify from the stored set.
	sim.SetCertificatesReachable(false)
	sim.SetAnswerSigner(punchsim.SignWithCertificate)
	a = rig.Start()
	n := len(sim.Accepted())
	var led2 harness.Ledger
	shifts = harness.StartShifts(ctx, rig.Meter, &led2, harness.ShiftsOptions{First: 100, MaxPause: 200 * time.Millisecond, Seed: 3})
	testsupport.WaitFor(t, time.Minute, "deliveries after the restart", func() bool { return len(sim.Accepted()) >= n+3 })
	if err := shifts.Stop(); err != nil {
		t.Fatalf("meter: %v", err)
	}
	if err := rig.WaitDelivered(ctx, append(led.Acked(), led2.Acked()...)); err != nil {
		t.Fatal(err)
	}
	st = agentStatus(t, rig)
	if field(st, "uploader", "auth", "download", "last_error") == nil {
		t.Errorf("the download API was unreachable but status shows no download error: %v", field(st, "uploader", "auth", "download"))
	}
	rig.Stop(a)
}
