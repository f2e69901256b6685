package badinput

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"taxi-agent/internal/meter"
	"taxi-agent/internal/metersim"
	"taxi-agent/test/harness"
)

// TestLineNoise puts garbage on the serial line between the meter's
// frames: random noise, frames with a broken check byte or end marker,
// truncated frames, trip records and vendor commands the agent does not
// handle. The broken frames are sign-ins and sign-outs of drivers of their
// own: none of them may be stored or delivered, and every real event is
// delivered exactly once.
func TestLineNoise(t *testing.T) {
	rig := harness.NewRig(t, agentBin, harness.RigOptions{Meter: metersim.Options{Seed: 42}})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	a := rig.Start()
	var led harness.Ledger
	rng := rand.New(rand.NewPCG(42, 43))
	day := time.Now()
	m := rig.Meter
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for n := 1; n <= 12; n++ {
		s := harness.ShiftOf(n, day)
		ghost := harness.ShiftOf(9000+n, day) // must never be delivered
		for _, signIn := range []bool{true, false} {
			f := ghost.SignOutFrame(n%2 == 0)
			if signIn {
				f = ghost.SignInFrame()
			}
			_, err := m.Noise(rng.IntN(64))
			check(err)
			switch rng.IntN(5) {
			case 0:
				check(m.BrokenCheck(f))
			case 1:
				check(m.MissingEnd(f))
			case 2:
				_, err := m.Truncated(f, 0)
				check(err)
			case 3:
				check(m.SendOnly(meter.Frame{Device: meter.DeviceMeter, Command: 0x00E8, Data: []byte{1, 2, 3, 4}}))
			case 4:
				check(m.SendOnly(meter.Frame{Device: meter.DeviceMeter, Vendor: 0x37, Command: 0x3701, Data: []byte("vendor")}))
			}
			if signIn {
				_, err = led.SignIn(ctx, m, s)
			} else {
				_, err = led.SignOut(ctx, m, s, "", n%2 == 0)
			}
			check(err)
		}
	}
	if err := rig.WaitDelivered(ctx, led.Acked()); err != nil {
		t.Fatal(err)
	}
	rig.Stop(a)
	tally := harness.Reconcile(led.Acked(), rig.Endpoint.Accepted())
	if !tally.OK() || tally.Duplicates != 0 || tally.Unacked != 0 {
		t.Fatalf("%s\naccepted: %+v", tally, rig.Endpoint.Accepted())
	}
	if recs := rig.Records(); len(recs) != led.Len() {
		t.Fatalf("outbox holds %d records for %d events", len(recs), led.Len())
	}
	resent := 0
	for _, e := range led.Acked() {
		if e.Sends > 1 {
			resent++
		}
	}
	t.Logf("%s; %d events needed a re-send after the garbage before them", tally, resent)
}
