package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	"taxi-agent/internal/outbox"
	"taxi-agent/internal/punch"
	"taxi-agent/internal/punchsim"
	"taxi-agent/test/harness"
)

// TestShiftsThroughAnOutage signs drivers in and out with a standard
// meter, takes the endpoint offline while more events arrive, brings it
// back, and stops the agent with SIGTERM: every sign-in reported and every
// sign-out answered 0x90 is delivered exactly once, in order, with the
// right fields, and a restart delivers nothing again.
func TestShiftsThroughAnOutage(t *testing.T) {
	rig := harness.NewRig(t, agentBin, harness.RigOptions{})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var led harness.Ledger
	must := func(_ harness.Acked, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	a := rig.Start()

	// Online: a whole shift.
	day := time.Now()
	s1 := harness.ShiftOf(1, day)
	must(led.SignIn(ctx, rig.Meter, s1))
	must(led.SignOut(ctx, rig.Meter, s1, "", false))
	waitDelivered(ctx, t, rig, &led)
	// The fake counts a punch before its answer is on the wire: wait for
	// the agent to have it, or the outage would cut it and the punch be
	// sent again (rightly, but this test wants each exactly once).
	if err := a.WaitOutput(`msg="punch delivered"`, 2, 10*time.Second); err != nil {
		t.Fatal(err)
	}

	// Offline: the events wait in the outbox.
	if err := rig.Endpoint.Stop(); err != nil {
		t.Fatal(err)
	}
	s2 := harness.ShiftOf(2, day)
	must(led.SignIn(ctx, rig.Meter, s2))
	noLicence := s2
	noLicence.Driver = "" // this meter leaves the licence out of the sign-out
	must(led.SignOut(ctx, rig.Meter, noLicence, s2.Driver, false))
	s3 := harness.ShiftOf(3, day)
	must(led.SignIn(ctx, rig.Meter, s3))
	// A meter that reports the same sign-in twice: it is stored once.
	if res, err := rig.Meter.SignIn(ctx, s3); err != nil || !res.OK() {
		t.Fatalf("re-sent sign-in: %+v, %v", res, err)
	}
	// A sign-out re-sent later (0x00F1) carries the meter's sign-out time.
	s3.End = day.Add(2*time.Hour + 7*time.Hour + 41*time.Minute)
	must(led.SignOut(ctx, rig.Meter, s3, "", true))
	if n := len(rig.Endpoint.Accepted()); n != 2 {
		t.Fatalf("%d punches accepted while offline, want still 2", n)
	}

	// Online again: the backlog drains by itself.
	if err := rig.Endpoint.Start(); err != nil {
		t.Fatal(err)
	}
	waitDelivered(ctx, t, rig, &led)
	// One more while online, then stop at once.
	s4 := harness.ShiftOf(4, day)
	must(led.SignIn(ctx, rig.Meter, s4))
	waitDelivered(ctx, t, rig, &led)

	took := rig.Stop(a)
	t.Logf("SIGTERM to exit: %s", took)
	if states := a.States(); !slices.Contains(states, "READY=1") || !slices.Contains(states, "STOPPING=1") {
		t.Errorf("notify states %q, want READY=1 and STOPPING=1", states)
	}

	checkDelivered(t, rig, &led)

	// A restart finds nothing to send.
	b := rig.Start()
	time.Sleep(300 * time.Millisecond) // long enough for a wrong resend to be on its way
	rig.Stop(b)
	if n := len(rig.Endpoint.Accepted()); n != led.Len() {
		t.Fatalf("after a restart %d punches accepted, want still %d", n, led.Len())
	}
}

// TestSignalsWhileDraining stops the agent with SIGTERM while it is
// draining a backlog against a slow endpoint: it exits 0 within the drain
// deadline, and what it did not deliver is pending, in order, for the next
// start, which delivers it.
func TestSignalsWhileDraining(t *testing.T) {
	rig := harness.NewRig(t, agentBin, harness.RigOptions{})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var led harness.Ledger
	if err := rig.Endpoint.Stop(); err != nil {
		t.Fatal(err)
	}
	a := rig.Start()
	day := time.Now()
	for n := range 6 {
		s := harness.ShiftOf(10+n, day)
		if _, err := led.SignIn(ctx, rig.Meter, s); err != nil {
			t.Fatal(err)
		}
	}
	const stall = 600 * time.Millisecond
	started := make(chan int, 16)
	rig.Endpoint.SetFaults(func(x punchsim.Exchange) punchsim.Fault {
		select {
		case started <- x.Seq:
		default:
		}
		return punchsim.Fault{Kind: punchsim.Stall, Delay: stall}
	})
	if err := rig.Endpoint.Start(); err != nil {
		t.Fatal(err)
	}
	waitAccepted(ctx, t, rig, 1)
	// SIGTERM while the second punch waits for its answer: the agent lets
	// it finish, within the drain deadline, then exits 0.
	for seq := 0; seq < 2; {
		select {
		case seq = <-started:
		case <-ctx.Done():
			t.Fatal("second punch never sent")
		}
	}
	took := rig.Stop(a)
	if took > rig.Config.Uploader.DrainTimeout+2*time.Second {
		t.Errorf("SIGTERM to exit took %s, beyond the %s drain deadline", took, rig.Config.Uploader.DrainTimeout)
	}
	recs := rig.Records()
	delivered := 0
	for i, r := range recs {
		if r.State == outbox.Delivered {
			if i != delivered {
				t.Errorf("record %d delivered after a pending one", r.ID)
			}
			delivered++
		}
	}
	if accepted := len(rig.Endpoint.Accepted()); delivered != 2 || accepted != 2 {
		t.Errorf("after SIGTERM during the second punch: %d records delivered in the outbox, %d punches accepted; want the punch in flight finished: 2 and 2",
			delivered, accepted)
	}
	t.Logf("stopped after %s with %d of %d delivered", took, delivered, len(recs))

	rig.Endpoint.SetFaults(nil)
	b := rig.Start()
	waitDelivered(ctx, t, rig, &led)
	rig.Stop(b)
	tally := harness.Reconcile(led.Acked(), rig.Endpoint.Accepted())
	if !tally.OK() || tally.Duplicates > 1 {
		t.Fatalf("after the restart: %s", tally)
	}
}

func waitDelivered(ctx context.Context, t *testing.T, rig *harness.Rig, led *harness.Ledger) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := rig.WaitDelivered(wctx, led.Acked()); err != nil {
		t.Fatal(err)
	}
}

func waitAccepted(ctx context.Context, t *testing.T, rig *harness.Rig, n int) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := rig.Endpoint.WaitAccepted(wctx, n); err != nil {
		t.Fatalf("want %d punches accepted, have %d: %v", n, len(rig.Endpoint.Accepted()), err)
	}
}

// checkDelivered checks the fake's accepted punches and the outbox against
// the ledger: each event exactly once, in order, with its fields, and every
// record delivered.
func checkDelivered(t *testing.T, rig *harness.Rig, led *harness.Ledger) {
	t.Helper()
	accepted := rig.Endpoint.Accepted()
	tally := harness.Reconcile(led.Acked(), accepted)
	if !tally.OK() || tally.Duplicates != 0 || tally.Unacked != 0 || len(accepted) != led.Len() {
		t.Fatalf("%s\naccepted: %+v", tally, accepted)
	}
	recs := rig.Records()
	if len(recs) != led.Len() {
		t.Fatalf("outbox holds %d records, want %d (one per event)", len(recs), led.Len())
	}
	for i, r := range recs {
		want := led.Acked()[i]
		if r.State != outbox.Delivered || harness.RecordKey(r) != want.Key() {
			t.Errorf("record %d: %s %s, want %s delivered", r.ID, harness.RecordKey(r), r.State, want.Key())
		}
		if r.Event != (punch.Event{Type: accepted[i].EventType, DriverLicense: accepted[i].DriverLicense,
			PlateNumber: accepted[i].PlateNumber, RegionID: accepted[i].RegionID, EventTime: accepted[i].EventTime}) {
			t.Errorf("record %d stored %+v, delivered %+v", r.ID, r.Event, accepted[i])
		}
	}
}
