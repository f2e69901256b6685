package badinput

import (
	"context"
	"strings"
	"testing"
	"time"

	"taxi-agent/internal/config"
	"taxi-agent/internal/outbox"
	"taxi-agent/test/harness"
)

// TestFullOutbox fills a 1 MiB outbox while WeChat Pay is unreachable:
// the meter is answered 0xFF once nothing more fits, and keeps re-sending;
// when the endpoint is back and the backlog drains there is room again,
// the re-sent event is stored and answered 0x90, and nothing that was
// pending is lost.
func TestFullOutbox(t *testing.T) {
	rig := harness.NewRig(t, agentBin, harness.RigOptions{
		Configure: func(c *config.Config) {
			c.Outbox.MaxSizeMiB = 1
			c.Log.Level = "info"
		},
	})
	// The whole is bounded by the package's -timeout: each phase below
	// fails on its own when the agent stops making progress. Delivering
	// the ~2 700 events of a full 1 MiB outbox took from 40 s to 2.5 min
	// with the race detector on 2 loaded cores, over what a fixed 5-minute
	// budget for the whole test left.
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	if err := rig.Endpoint.Stop(); err != nil {
		t.Fatal(err)
	}
	a := rig.Start()
	start := time.Now()
	var led harness.Ledger
	shifts := harness.StartShifts(ctx, rig.Meter, &led, harness.ShiftsOptions{First: 1})

	// Full: the meter itself was answered 0xFF. The agent's log is no
	// measure: the event that found the outbox full may be a sign-in,
	// which is kept in memory and not answered, and a sign-out refused
	// after it is logged in its own words.
	for deadline := time.Now().Add(3 * time.Minute); rig.Meter.Refusals() == 0; time.Sleep(50 * time.Millisecond) {
		if err := shifts.Failed(); err != nil {
			t.Fatalf("the meter stopped before the outbox was full: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the meter was never answered 0xFF in 3m0s; %d events acknowledged", led.Len())
		}
	}
	if !strings.Contains(a.Output(), "answered 0xFF so the meter re-sends") {
		t.Errorf("the meter was answered 0xFF and the agent's log does not say so")
	}
	full := led.Len()
	firstRefused := "a sign-out (answered 0xFF)"
	if strings.Contains(a.Output(), "kept in memory and stored as soon as the outbox accepts") {
		firstRefused = "a sign-in (held in memory)"
	}
	t.Logf("full after %d events, %s; the first event refused was %s", full, time.Since(start).Round(time.Millisecond), firstRefused)
	if err := rig.Endpoint.Start(); err != nil {
		t.Fatal(err)
	}
	// Room again: the refused event goes in, and more after it.
	// The meter is answered every few milliseconds once there is room, so
	// 15 s without one is a stuck agent.
	last, lastAt := led.Len(), time.Now()
	const more = 300
	for led.Len() < full+more {
		if n := led.Len(); n > last {
			last, lastAt = n, time.Now()
		}
		if time.Since(lastAt) > 15*time.Second {
			t.Fatalf("stuck: %d events acknowledged, none for 15 s since the endpoint came back (full at %d; want %d)",
				last, full, full+more)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Logf("%d more stored %s after the endpoint came back", led.Len()-full, time.Since(start).Round(time.Millisecond))
	if err := shifts.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := rig.WaitDeliveredMoving(ctx, led.Acked(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	rig.Stop(a)

	acked := led.Acked()
	refusedThenStored, refusals := 0, 0
	for _, r := range acked {
		if r.Refusals > 0 {
			refusedThenStored++
			refusals += r.Refusals
		}
	}
	if refusedThenStored == 0 {
		t.Errorf("no event was refused (0xFF) and then stored")
	}
	t.Logf("%d events refused (0xFF) %d times in all, each stored later", refusedThenStored, refusals)
	tally := harness.Reconcile(acked, rig.Endpoint.Accepted())
	if !tally.OK() || tally.Duplicates != 0 || tally.Unacked != 0 {
		t.Fatal(tally)
	}
	// Delivered records made way for new ones; none is pending or dead.
	recs := rig.Records()
	for _, r := range recs {
		if r.State != outbox.Delivered {
			t.Errorf("record %d is %s", r.ID, r.State)
		}
	}
	t.Logf("%s; %d records kept in the outbox", tally, len(recs))
}
