package gateway

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"taxi-agent/internal/config"
	"taxi-agent/internal/outbox"
	"taxi-agent/internal/punchsim"
	"taxi-agent/internal/testsupport"
	"taxi-agent/test/harness"
)

// terminalRig is the agent binary, a simulated meter and a gateway in
// front of the fake WeChat Pay, the agent in gateway mode. The gateway's
// wait and WeChat Pay call (0.5 s + 1 s) stay under the agent's attempt
// timeout (2 s in the harness config), as check-config insists for the
// real ones.
func terminalRig(t *testing.T) (*harness.Rig, *harness.Gateway, *harness.Agent) {
	t.Helper()
	rig := harness.NewRig(t, agentBin, harness.RigOptions{
		Configure: func(c *config.Config) { c.Log.Level = "info" },
	})
	gw := harness.NewGateway(t, gatewayBin, rig.Endpoint, 100)
	gw.Config.Limit.MaxWait.Duration = 500 * time.Millisecond
	gw.Config.WeChatPay.AttemptTimeout.Duration = time.Second
	gw.Config.Log.Level = "info"
	gw.WriteConfig()
	gwRun := gw.Start()
	gw.Pin()
	gw.Terminal(&rig.Config, gw.Enroll(harness.Plate))
	harness.WriteConfig(t, rig.ConfigPath, rig.Config)
	return rig, gw, gwRun
}

// TestFaultsThroughGateway is the fault suite of test/fault with the agent
// in gateway mode: every event is delivered once, in order, whatever WeChat
// Pay does, and no unverified answer counts as a delivery.
func TestFaultsThroughGateway(t *testing.T) {
	rig, _, _ := terminalRig(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	a := rig.Start()
	var led harness.Ledger
	shifts := harness.StartShifts(ctx, rig.Meter, &led, harness.ShiftsOptions{First: 1, MaxPause: 300 * time.Millisecond, Seed: 1})
	outages := 0
	for _, p := range harness.FaultPhases() {
		if p.Outage > 0 {
			outages++
		}
		took := rig.RunFaultPhase(p)
		t.Logf("%s: recovered in %s", p.Name, took.Round(time.Millisecond))
	}
	if err := shifts.Stop(); err != nil {
		t.Fatalf("meter: %v", err)
	}
	if err := rig.WaitDelivered(ctx, led.Acked()); err != nil {
		t.Fatal(err)
	}
	rig.Stop(a)
	acked, accepted := led.Acked(), rig.Endpoint.Accepted()
	tally := harness.Reconcile(acked, accepted)
	t.Logf("%s; fake: %+v", tally, rig.Endpoint.Stats())
	if !tally.OK() || tally.Unacked != 0 {
		t.Fatal(tally)
	}
	if tally.Duplicates > outages {
		t.Fatalf("%d duplicates with %d outages: %s", tally.Duplicates, outages, tally)
	}
	recs := rig.Records()
	for i, r := range recs {
		if r.State != outbox.Delivered || (i < len(acked) && harness.RecordKey(r) != acked[i].Key()) {
			t.Errorf("record %d: %s %s, want %s delivered", r.ID, harness.RecordKey(r), r.State, acked[i].Key())
		}
	}
	// No punch answered with an unverified 204 counted as delivered: each
	// was sent again until accepted.
	for _, x := range harness.UnverifiedNotResent(rig.Endpoint.Exchanges()) {
		t.Errorf("exchange %d answered %s was never sent again until accepted", x.Seq, x.Fault)
	}
}

// TestRejectionsThroughGateway: WeChat Pay's 400 dead-letters that one
// event and the queue goes on; its 403 holds the queue, shows in status,
// and the events go out once it stops.
func TestRejectionsThroughGateway(t *testing.T) {
	rig, _, _ := terminalRig(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	a := rig.Start()
	var led harness.Ledger
	day := time.Now()

	rig.Endpoint.Inject(punchsim.Fault{Kind: punchsim.BadRequest})
	s1 := harness.ShiftOf(1, day)
	if _, err := led.SignIn(ctx, rig.Meter, s1); err != nil {
		t.Fatal(err)
	}
	if _, err := led.SignOut(ctx, rig.Meter, s1, "", false); err != nil {
		t.Fatal(err)
	}
	testsupport.WaitFor(t, time.Minute, "the sign-out delivered", func() bool { return len(rig.Endpoint.Accepted()) == 1 })
	var recs []record
	testsupport.WaitFor(t, time.Minute, "the sign-in dead", func() bool {
		recs = outboxLs(t, rig)
		return len(recs) == 2 && recs[0].State == outbox.Dead && recs[1].State == outbox.Delivered
	})
	dead := recs[0]
	if dead.LastError == nil || dead.LastError.Status != 400 || dead.LastError.Code != "PARAM_ERROR" || dead.LastError.RequestID == "" {
		t.Errorf("dead-letter keeps %+v, want WeChat Pay's 400 PARAM_ERROR with its Request-ID", dead.LastError)
	}

	rig.Endpoint.SetFaults(func(punchsim.Exchange) punchsim.Fault { return punchsim.Fault{Kind: punchsim.Forbidden} })
	s2 := harness.ShiftOf(2, day)
	if _, err := led.SignIn(ctx, rig.Meter, s2); err != nil {
		t.Fatal(err)
	}
	testsupport.WaitFor(t, time.Minute, "a 403 seen", func() bool { return rig.Endpoint.Stats().Faults[punchsim.Forbidden] > 0 })
	out := status(t, rig)
	for _, want := range []string{"HELD", "403", "mode", "gateway", "last answer"} {
		if !strings.Contains(out, want) {
			t.Errorf("status does not show %q:\n%s", want, out)
		}
	}
	rig.Endpoint.SetFaults(nil)
	testsupport.WaitFor(t, time.Minute, "the held sign-in delivered", func() bool { return len(rig.Endpoint.Accepted()) == 2 })
	rig.Stop(a)
}

// backlog is an agent whose 16 events (8 drivers signed in and out) wait
// in its outbox while the gateway is stopped.
type backlog struct {
	rig   *harness.Rig
	gw    *harness.Gateway
	agent *harness.Agent
	led   harness.Ledger
}

func startBacklog(ctx context.Context, t *testing.T) *backlog {
	t.Helper()
	b := &backlog{}
	var gwRun *harness.Agent
	b.rig, b.gw, gwRun = terminalRig(t)
	b.agent = b.rig.Start()
	b.gw.Stop(gwRun)
	day := time.Now()
	for n := 1; n <= 8; n++ {
		s := harness.ShiftOf(n, day)
		if _, err := b.led.SignIn(ctx, b.rig.Meter, s); err != nil {
			t.Fatal(err)
		}
		if _, err := b.led.SignOut(ctx, b.rig.Meter, s, "", false); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// restartAndDrain starts the gateway again, waits for every acknowledged
// event, stops the agent and reconciles what WeChat Pay accepted.
func (b *backlog) restartAndDrain(ctx context.Context, t *testing.T) harness.Tally {
	t.Helper()
	b.gw.Start()
	if err := b.rig.WaitDelivered(ctx, b.led.Acked()); err != nil {
		t.Fatal(err)
	}
	b.rig.Stop(b.agent)
	return harness.Reconcile(b.led.Acked(), b.rig.Endpoint.Accepted())
}

// TestGatewayRestartMidBacklog: a backlog piles up while the gateway is
// down; it comes back slowed by a sluggish WeChat Pay, is restarted in the
// middle of the drain, and every event is delivered once, in order.
func TestGatewayRestartMidBacklog(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	b := startBacklog(ctx, t)
	rig, gw := b.rig, b.gw
	rig.Endpoint.SetFaults(func(punchsim.Exchange) punchsim.Fault { return punchsim.Fault{Delay: 150 * time.Millisecond} })
	run := gw.Start()
	testsupport.WaitFor(t, time.Minute, "part of the backlog delivered", func() bool { return len(rig.Endpoint.Accepted()) >= 4 })
	gw.Stop(run)
	if n := len(rig.Endpoint.Accepted()); n >= b.led.Len() {
		t.Fatalf("the whole backlog (%d) went out before the restart; the test proves nothing", n)
	}
	tally := b.restartAndDrain(ctx, t)
	if !tally.OK() || tally.Duplicates != 0 || tally.Unacked != 0 {
		t.Fatal(tally)
	}
}

// TestGatewayKilledMidCall: the gateway is killed with SIGKILL, as a
// power cut or the OOM killer would end it, while WeChat Pay holds one of
// its calls, in the middle of a backlog. Nothing is lost and the order
// holds. The punch in flight was accepted by WeChat Pay but its answer
// died with the gateway, and the new gateway has no memory of it (without
// Redis its dedup lives in memory): the terminal sends it again and WeChat
// Pay sees it twice, at most that once. Delivery is at least once.
func TestGatewayKilledMidCall(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	b := startBacklog(ctx, t)
	rig, gw := b.rig, b.gw
	const heldCall = 5
	held := make(chan struct{})
	var calls atomic.Int32
	rig.Endpoint.SetFaults(func(punchsim.Exchange) punchsim.Fault {
		if calls.Add(1) == heldCall {
			// WeChat Pay takes its time over this one (under the
			// gateway's 1 s attempt timeout) and then accepts it, whether
			// or not anyone is left to read the answer.
			close(held)
			time.Sleep(700 * time.Millisecond)
		}
		return punchsim.Fault{}
	})
	run := gw.Start()
	select {
	case <-held:
	case <-ctx.Done():
		t.Fatalf("WeChat Pay never got call %d; accepted %d", heldCall, len(rig.Endpoint.Accepted()))
	}
	run.Kill()
	if code, err := run.Wait(time.Second); err != nil || code != -1 {
		t.Fatalf("gateway after SIGKILL: exit %d, %v; want killed by the signal", code, err)
	}
	if n := len(rig.Endpoint.Accepted()); n >= b.led.Len() {
		t.Fatalf("the whole backlog (%d) went out before the kill; the test proves nothing", n)
	}
	tally := b.restartAndDrain(ctx, t)
	// The held call ends after its delay, whoever is left to read its
	// answer: count it.
	testsupport.WaitFor(t, 10*time.Second, "every call WeChat Pay got answered", func() bool {
		return len(rig.Endpoint.Exchanges()) == int(calls.Load())
	})
	if x := rig.Endpoint.Exchanges()[heldCall-1]; !x.Accepted {
		t.Fatalf("the held call was not accepted (%+v): the kill was not mid-call", x)
	}
	if !tally.OK() || tally.Unacked != 0 || tally.Duplicates > 1 {
		t.Fatalf("%v; want nothing lost, in order, and at most the punch in flight at the kill twice", tally)
	}
	t.Logf("killed during call %d: %d events delivered, %d sent twice", heldCall, tally.Delivered, tally.Duplicates)
}

// record is what `agent outbox ls -json` prints of a record.
type record struct {
	ID        uint64               `json:"id"`
	State     outbox.State         `json:"state"`
	LastError *outbox.AttemptError `json:"last_error"`
}

// outboxLs lists the running agent's outbox through its admin socket.
func outboxLs(t *testing.T, rig *harness.Rig) []record {
	t.Helper()
	out, err := exec.Command(agentBin, "outbox", "ls", "-config", rig.ConfigPath, "-json").Output()
	if err != nil {
		t.Fatalf("agent outbox ls: %v", err)
	}
	var recs []record
	for line := range strings.Lines(string(out)) {
		var r record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("outbox ls line %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// status runs `agent status` against the running agent.
func status(t *testing.T, rig *harness.Rig) string {
	t.Helper()
	out, err := exec.Command(agentBin, "status", "-config", rig.ConfigPath).CombinedOutput()
	if err != nil {
		t.Fatalf("agent status: %v\n%s", err, out)
	}
	return string(out)
}
