package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"taxi-agent/internal/config"
	"taxi-agent/internal/metersim"
	"taxi-agent/test/harness"
)

// TestDriverIdentityFromTerminal runs the binary with meter.identity =
// "terminal": the card reader's software sets the driver over the admin
// socket, the meter asks who is driving, gets that identity and signs in
// with it, and the punch carries that licence. After `driver clear` the
// meter's next request is refused.
func TestDriverIdentityFromTerminal(t *testing.T) {
	rig := harness.NewRig(t, agentBin, harness.RigOptions{
		Configure: func(c *config.Config) { c.Meter.Identity = config.IdentityTerminal },
	})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	a := rig.Start()
	const licence, company = "11010519491231002X", "110000000042"
	if out := rig.CLI("driver", "set", "-licence", licence, "-company", company); !strings.Contains(out, "driver set: licence "+licence) {
		t.Fatalf("driver set: %s", out)
	}
	if out := rig.CLI("driver", "show"); !strings.Contains(out, "driver: licence "+licence+", company "+company) {
		t.Fatalf("driver show: %s", out)
	}

	// The meter's own card data names someone else: the terminal's wins.
	var led harness.Ledger
	s := harness.ShiftOf(1, time.Now())
	in, err := led.SignIn(ctx, rig.Meter, s)
	if err != nil {
		t.Fatal(err)
	}
	if in.Licence != licence {
		t.Fatalf("the meter signed in %s, want the terminal's %s", in.Licence, licence)
	}
	out := s
	out.Driver = licence
	if _, err := led.SignOut(ctx, rig.Meter, out, "", false); err != nil {
		t.Fatal(err)
	}
	if err := rig.WaitDelivered(ctx, led.Acked()); err != nil {
		t.Fatal(err)
	}
	for _, p := range rig.Endpoint.Accepted() {
		if p.DriverLicense != licence {
			t.Errorf("punch %s carries %q, want %q", p.EventType, p.DriverLicense, licence)
		}
	}

	rig.CLI("driver", "clear")
	if _, err := rig.Meter.SignIn(ctx, harness.ShiftOf(2, time.Now())); !errors.Is(err, metersim.ErrRefused) {
		t.Fatalf("sign-in after driver clear: %v, want refused", err)
	}
	if err := a.WaitOutput("no driver is set; refused", 1, 5*time.Second); err != nil {
		t.Error(err)
	}
	rig.Stop(a)
	if n := len(rig.Endpoint.Accepted()); n != 2 {
		t.Errorf("%d punches, want the sign-in and the sign-out", n)
	}

	// The driver set survives a restart: it lives in the outbox file.
	rig.CLI("driver", "set", "-licence", licence)
	b := rig.Start()
	if res, err := rig.Meter.RequestSignIn(ctx, s); err != nil || !res.OK() {
		t.Fatalf("request after a restart: %+v, %v", res, err)
	}
	rig.Stop(b)
}

// TestEchoingLine runs the binary on a line that hands back every byte the
// agent sends (an RS-485 adapter that keeps its receiver on). Heartbeats,
// sign-ins and sign-outs still work and are delivered, every echo is
// dropped, the agent sends no frame that was not due, and the log holds
// no burst of warnings.
func TestEchoingLine(t *testing.T) {
	rig := harness.NewRig(t, agentBin, harness.RigOptions{Meter: metersim.Options{Echo: true}})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	a := rig.Start()
	var led harness.Ledger
	for n := 1; n <= 3; n++ {
		s := harness.ShiftOf(n, time.Now())
		for range 3 {
			if res, err := rig.Meter.Heartbeat(ctx, 0, s); err != nil || !res.OK() {
				t.Fatalf("heartbeat: %+v, %v", res, err)
			}
		}
		if _, err := led.SignIn(ctx, rig.Meter, s); err != nil {
			t.Fatal(err)
		}
		if _, err := led.SignOut(ctx, rig.Meter, s, "", false); err != nil {
			t.Fatal(err)
		}
	}
	if err := rig.WaitDelivered(ctx, led.Acked()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // room for an undue frame to show
	st := rig.CLI("status", "-json")
	rig.Stop(a)
	// Due: 9 heartbeat answers, 6 request answers, 3 sign-out answers.
	for _, want := range []string{`"echoes":18`, `"heartbeat":9`, `"request":6`, `"ok":3`, `"failed":0`, `"bad_bodies":0`} {
		if !strings.Contains(st, want) {
			t.Errorf("status lacks %s:\n%s", want, st)
		}
	}
	if n := rig.Meter.Echoed(); n == 0 {
		t.Error("the line echoed nothing")
	}
	if out := a.Output(); strings.Count(out, "level=WARN")+strings.Count(out, "level=ERROR") > 0 {
		t.Errorf("warnings on an echoing line:\n%s", harness.Tail(out, 40))
	}
	tally := harness.Reconcile(led.Acked(), rig.Endpoint.Accepted())
	if !tally.OK() || tally.Duplicates != 0 || tally.Unacked != 0 {
		t.Fatal(tally)
	}
}
