package crash

import (
	"context"
	"flag"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"taxi-agent/internal/config"
	"taxi-agent/internal/metersim"
	"taxi-agent/internal/outbox"
	"taxi-agent/internal/punch"
	"taxi-agent/internal/punchsim"
	"taxi-agent/test/harness"
)

var (
	cycles = flag.Int("crash.cycles", 50, "kill-and-restart cycles; the long form is 1000")
	seed   = flag.Uint64("crash.seed", 0, "seed of the kill schedule; 0 picks one (it is printed)")
)

// TestCrashKillDuringIngestAndDrain kills the agent at random moments:
// sometimes while it starts, mostly while the meter is reporting events
// and the uploader is waiting for slow answers. The meter is a standard
// one: it re-sends a sign-out until answered 0x90 (as 0x00F1), and
// reports a sign-in once, unanswered.
//
// The promise checked: every sign-out answered 0x90 is delivered, and
// every sign-in sent more than harness.SignInGrace before a kill. A
// sign-in sent within that grace before a kill, or while no agent was
// up to read it, may be lost with the process (the meter does not send
// it again); it is left out of the reckoning either way.
func TestCrashKillDuringIngestAndDrain(t *testing.T) {
	s := *seed
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	rng := rand.New(rand.NewPCG(s, s>>1|1))
	var fakeMu sync.Mutex
	fakeRng := rand.New(rand.NewPCG(s^0xA5A5, s))
	rig := harness.NewRig(t, agentBin, harness.RigOptions{
		Endpoint: punchsim.Options{Faults: func(punchsim.Exchange) punchsim.Fault {
			fakeMu.Lock()
			defer fakeMu.Unlock()
			// Slow answers: the uploader spends most of its time waiting,
			// so that kills land mid-upload too.
			return punchsim.Fault{Kind: punchsim.Stall, Delay: time.Duration(10+fakeRng.IntN(40)) * time.Millisecond}
		}},
		Meter: metersim.Options{AnswerTimeout: 200 * time.Millisecond, Seed: s},
		Configure: func(c *config.Config) {
			c.Log.Level = "info"
			c.Uploader.BackoffMin = 50 * time.Millisecond
			c.Uploader.BackoffMax = 500 * time.Millisecond
		},
	})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute+time.Duration(*cycles)*time.Second)
	defer cancel()

	var led harness.Ledger
	shifts := harness.StartShifts(ctx, rig.Meter, &led, harness.ShiftsOptions{First: 1, MaxPause: 50 * time.Millisecond, Seed: rng.Uint64()})

	kills, early := 0, 0
	var killedAt []time.Time
	var down []span // from a kill's grace to the next agent's READY
	start := time.Now()
	for c := range *cycles {
		a := rig.Launch()
		readyAt := time.Now() // for a kill before READY: when it was launched
		if c%8 == 7 {
			// Now and then the power goes before the agent is ready.
			time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
			if a.Running() {
				early++
			}
		} else {
			if _, err := a.WaitReady(harness.ReadyTimeout); err != nil {
				t.Fatalf("cycle %d: %v", c, err)
			}
			readyAt = time.Now()
			up := time.Duration(20+rng.IntN(400)) * time.Millisecond
			if c%3 == 0 {
				// Long enough up for sign-ins to be promised (sent more
				// than SignInGrace before the kill).
				up = harness.SignInGrace + time.Duration(200+rng.IntN(800))*time.Millisecond
			}
			time.Sleep(up)
		}
		if !a.Running() {
			code, _ := a.Wait(0)
			t.Fatalf("cycle %d: agent exited %d by itself", c, code)
		}
		if len(down) > 0 {
			down[len(down)-1].to = readyAt
		}
		k := time.Now()
		killedAt = append(killedAt, k)
		down = append(down, span{from: k.Add(-harness.SignInGrace)})
		a.Kill()
		kills++
	}
	killing := time.Since(start)

	// The last run: the meter finishes the event it is on, and the agent
	// delivers everything.
	a := rig.Start()
	down[len(down)-1].to = time.Now()
	if err := shifts.Stop(); err != nil {
		t.Fatalf("meter: %v", err)
	}
	drainStart := time.Now()
	acked, atRisk := promised(led.Acked(), down)
	if err := rig.WaitDelivered(ctx, acked); err != nil {
		t.Fatal(err)
	}
	drain := time.Since(drainStart)
	rig.Stop(a)

	accepted, riskDelivered := withoutKeys(rig.Endpoint.Accepted(), atRisk)
	tally := harness.Reconcile(acked, accepted)
	midUpload := 0
	for _, x := range rig.Endpoint.Exchanges() {
		if strings.Contains(x.Detail, "client gone") {
			midUpload++
		}
	}
	// Kills that landed between a frame and its answer, and frames
	// stored by an agent that died before answering, then re-sent.
	midIngest := 0
	for _, e := range acked {
		for _, k := range killedAt {
			if e.Sent.Before(k) && e.Answered.After(k) {
				midIngest++
				break
			}
		}
	}
	storedTwice := 0
	for _, a := range rig.Agents() {
		storedTwice += strings.Count(a.Output(), "re-sent frame acknowledged again")
	}
	t.Logf("seed %d: %d cycles in %s (%d kills, %d before READY), then %s to drain", s, *cycles,
		killing.Round(time.Millisecond), kills, early, drain.Round(time.Millisecond))
	t.Logf("events acknowledged %d, lost %d (must be 0), duplicates delivered %d (must be <= %d kills)",
		tally.Acked, len(tally.Lost), tally.Duplicates, kills)
	t.Logf("kills that cut an upload: %d; events whose exchange a kill cut: %d, of which the dead agent had stored: %d",
		midUpload, midIngest, storedTwice)
	t.Logf("sign-ins sent within %s before a kill or while no agent was up: %d, of which delivered anyway: %d",
		harness.SignInGrace, len(atRisk), riskDelivered)

	if !tally.OK() {
		t.Fatalf("seed %d: %s", s, tally)
	}
	if tally.Duplicates > kills {
		t.Fatalf("seed %d: %d duplicates delivered after %d kills: %s", s, tally.Duplicates, kills, tally)
	}
	if tally.Unacked != 0 {
		t.Errorf("%d events delivered that the meter never saw acknowledged; the meter finished every exchange", tally.Unacked)
	}
	if tally.Acked < *cycles {
		t.Errorf("only %d events acknowledged over %d cycles: the suite did not exercise ingest", tally.Acked, *cycles)
	}
	signIns := 0
	for _, a := range acked {
		if a.Type == punch.SignIn {
			signIns++
		}
	}
	if signIns < *cycles/5 {
		t.Errorf("only %d sign-ins were promised (sent more than %s before a kill): the suite did not exercise them", signIns, harness.SignInGrace)
	}

	// Stored once each, all delivered: nothing pending, nothing dead.
	var recs []outbox.Record
	for _, r := range rig.Records() {
		if !atRisk[harness.RecordKey(r)] {
			recs = append(recs, r)
		}
	}
	if len(recs) != len(acked) {
		t.Errorf("outbox holds %d records for %d events", len(recs), len(acked))
	}
	for i, r := range recs {
		if r.State != outbox.Delivered {
			t.Errorf("record %d (%s) is %s", r.ID, harness.RecordKey(r), r.State)
		}
		if i < len(acked) && harness.RecordKey(r) != acked[i].Key() {
			t.Errorf("record %d is %s, want %s: stored out of order", r.ID, harness.RecordKey(r), acked[i].Key())
		}
	}
}

// span is a stretch of time during which a sign-in may be lost.
type span struct{ from, to time.Time }

// promised splits the ledger: sign-ins reported within a span are at
// risk (their keys), the rest is what the agent promised.
func promised(all []harness.Acked, down []span) (kept []harness.Acked, atRisk map[string]bool) {
	atRisk = map[string]bool{}
	for _, a := range all {
		risky := false
		if a.Type == punch.SignIn {
			for _, d := range down {
				if !a.Reported.Before(d.from) && !a.Reported.After(d.to) {
					risky = true
					break
				}
			}
		}
		if risky {
			atRisk[a.Key()] = true
			continue
		}
		kept = append(kept, a)
	}
	return kept, atRisk
}

// withoutKeys drops the punches of at-risk events and counts them.
func withoutKeys(accepted []punchsim.Punch, keys map[string]bool) (kept []punchsim.Punch, dropped int) {
	seen := map[string]bool{}
	for _, p := range accepted {
		k := harness.PunchKey(p)
		if keys[k] {
			if !seen[k] {
				dropped++
				seen[k] = true
			}
			continue
		}
		kept = append(kept, p)
	}
	return kept, dropped
}
