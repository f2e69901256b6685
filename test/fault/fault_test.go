package fault

import (
	"context"
	"flag"
	"net/http"
	"testing"
	"time"

	"taxi-agent/internal/config"
	"taxi-agent/internal/outbox"
	"taxi-agent/internal/punchsim"
	"taxi-agent/test/harness"
)

var rounds = flag.Int("fault.rounds", 1, "times to go through every fault")

// phases is the fault suite (shared with the gateway's suite).
func phases() []harness.FaultPhase { return harness.FaultPhases() }

func TestFaultsWhileDriving(t *testing.T) {
	rig := harness.NewRig(t, agentBin, harness.RigOptions{
		Configure: func(c *config.Config) { c.Log.Level = "info" },
	})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute+time.Duration(*rounds)*time.Minute)
	defer cancel()
	a := rig.Start()
	var led harness.Ledger
	shifts := harness.StartShifts(ctx, rig.Meter, &led, harness.ShiftsOptions{First: 1, MaxPause: 300 * time.Millisecond, Seed: 1})

	outages := 0
	for round := range *rounds {
		for _, p := range phases() {
			if p.Outage > 0 {
				outages++
			}
			took := rig.RunFaultPhase(p)
			t.Logf("round %d, %s: recovered in %s", round+1, p.Name, took.Round(time.Millisecond))
		}
	}
	if err := shifts.Stop(); err != nil {
		t.Fatalf("meter: %v", err)
	}
	if err := rig.WaitDelivered(ctx, led.Acked()); err != nil {
		t.Fatal(err)
	}
	rig.Stop(a)

	acked := led.Acked()
	accepted := rig.Endpoint.Accepted()
	tally := harness.Reconcile(acked, accepted)
	t.Logf("%s; fake: %+v", tally, rig.Endpoint.Stats())
	if !tally.OK() || tally.Unacked != 0 {
		t.Fatal(tally)
	}
	// A punch is sent twice only if an outage cut its answer after the
	// fake had taken it.
	if tally.Duplicates > outages {
		t.Fatalf("%d duplicates with %d outages: %s", tally.Duplicates, outages, tally)
	}
	checkEveryFaultHit(t, rig)
	checkRetryAfter(t, rig)
	checkUnverifiedNotDelivered(t, rig, acked)
}

// checkRetryAfter checks that no request followed a Retry-After answer
// before the time it asked for.
func checkRetryAfter(t *testing.T, rig *harness.Rig) {
	t.Helper()
	xs := rig.Endpoint.Exchanges()
	for i, x := range xs[:len(xs)-1] {
		if x.Status != http.StatusTooManyRequests && x.Status != http.StatusServiceUnavailable {
			continue
		}
		// Every Retry-After the suite sends is "1".
		if gap := xs[i+1].At.Sub(x.At); gap < time.Second-50*time.Millisecond {
			t.Errorf("exchange %d came %s after a %d with Retry-After: 1", xs[i+1].Seq, gap, x.Status)
		}
	}
}

// checkEveryFaultHit guards the suite itself: each fault was applied.
func checkEveryFaultHit(t *testing.T, rig *harness.Rig) {
	t.Helper()
	applied := rig.Endpoint.Stats().Faults
	for _, p := range phases() {
		for _, f := range p.Faults {
			if applied[f.Kind] == 0 {
				t.Errorf("fault %s was never applied", f.Kind)
			}
		}
	}
}

// checkUnverifiedNotDelivered checks that no answer without a valid
// signature counted as a delivery: every punch answered so was sent again
// until the fake accepted it, and every record the outbox calls delivered
// is a punch the fake accepted, field for field.
func checkUnverifiedNotDelivered(t *testing.T, rig *harness.Rig, acked []harness.Acked) {
	t.Helper()
	for _, x := range harness.UnverifiedNotResent(rig.Endpoint.Exchanges()) {
		t.Errorf("exchange %d (%s) answered with %s was never sent again until accepted", x.Seq, harness.PunchKey(*x.Punch), x.Fault)
	}

	accepted := map[punchsim.Punch]bool{}
	for _, p := range rig.Endpoint.Accepted() {
		accepted[p] = true
	}
	recs := rig.Records()
	if len(recs) != len(acked) {
		t.Errorf("outbox holds %d records for %d events", len(recs), len(acked))
	}
	for i, r := range recs {
		if r.State != outbox.Delivered {
			t.Errorf("record %d (%s) is %s, want delivered", r.ID, harness.RecordKey(r), r.State)
			continue
		}
		p := punchsim.Punch{PlateNumber: r.Event.PlateNumber, DriverLicense: r.Event.DriverLicense,
			EventTime: r.Event.EventTime, EventType: r.Event.Type, RegionID: r.Event.RegionID}
		if !accepted[p] {
			t.Errorf("record %d is delivered but the fake never accepted %+v", r.ID, p)
		}
		if i < len(acked) && harness.RecordKey(r) != acked[i].Key() {
			t.Errorf("record %d is %s, want %s", r.ID, harness.RecordKey(r), acked[i].Key())
		}
	}
}
