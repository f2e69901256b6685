package uploader

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"taxi-agent/internal/outbox"
	"taxi-agent/internal/punchsim"
	"taxi-agent/internal/testsupport"
)

func TestFreshSignatureOnEveryRetry(t *testing.T) {
	e := newEnv(t, punchsim.Options{}, nil, func(c *Config) { c.TransportRetries = 2 })
	e.store.add(event(1), event(2), event(3))
	e.sim.Inject(
		// Event 1: two quick transport retries inside one attempt.
		punchsim.Fault{Kind: punchsim.ServerError}, punchsim.Fault{Kind: punchsim.ServerError},
		punchsim.Fault{},
		// Event 2: a reset, retried by the transport on a new connection.
		punchsim.Fault{Kind: punchsim.Reset},
		punchsim.Fault{},
		// Event 3: an answer that does not verify, retried by the drain loop.
		punchsim.Fault{Kind: punchsim.BadSignature},
	)
	e.start()
	rec := e.waitAttempts(3, 1)
	e.clock.WaitSleeper(t, rec.NextAttempt, 1)
	e.clock.Set(rec.NextAttempt)
	e.waitState(3, outbox.Delivered)

	x := e.sim.Exchanges()
	if len(x) != 7 {
		t.Fatalf("%d exchanges, want 7: %+v", len(x), x)
	}
	seen := map[string]int{}
	for _, ex := range x {
		if ex.Nonce == "" {
			t.Fatalf("exchange %d has no nonce: %+v", ex.Seq, ex)
		}
		if prev, dup := seen[ex.Nonce]; dup {
			t.Errorf("nonce %s of exchange %d reused by exchange %d", ex.Nonce, prev, ex.Seq)
		}
		seen[ex.Nonce] = ex.Seq
	}
	if rej := e.sim.Stats().Rejected; len(rej) != 0 {
		t.Errorf("fake rejected requests: %v", rej)
	}
	st := e.up.Status()
	if st.TransportRetries != 3 || st.Delivered != 3 || st.Retried != 1 {
		t.Errorf("status %+v: want 3 transport retries, 1 loop retry", st)
	}
	if r1, r2 := e.store.get(1), e.store.get(2); r1.Attempts != 1 || r2.Attempts != 1 {
		t.Errorf("transport retries counted as attempts (want 1 each, the delivering one): %+v %+v", r1, r2)
	}
}

func TestRetryAfterCapped(t *testing.T) {
	e := newEnv(t, punchsim.Options{}, nil, func(c *Config) {
		c.TransportRetries = 2
		c.RetryAfterCap = time.Minute
	})
	e.store.add(event(1), event(2))
	e.sim.Inject(
		punchsim.Fault{Kind: punchsim.RateLimited, RetryAfter: "86400"}, // a day: capped
		punchsim.Fault{},
		punchsim.Fault{Kind: punchsim.RateLimited, RetryAfter: "0"}, // short: the transport honours it
	)
	at := e.clock.Now()
	e.start()

	rec := e.waitAttempts(1, 1)
	if n := len(e.sim.Exchanges()); n != 1 {
		t.Fatalf("%d requests: the transport retried a day-long Retry-After", n)
	}
	wait := rec.NextAttempt.Sub(at)
	if wait < time.Minute || wait > time.Minute+time.Second {
		t.Errorf("next attempt in %s, want the 1m cap plus at most 1s of jitter", wait)
	}

	// A Wake does not cut short a wait the server asked for.
	e.clock.WaitSleeper(t, rec.NextAttempt, 1)
	e.up.Wake()
	e.clock.WaitSleeper(t, rec.NextAttempt, 2)
	if n := len(e.sim.Exchanges()); n != 1 {
		t.Fatalf("Wake sent %d requests during a Retry-After wait", n-1)
	}

	// A short Retry-After goes back to the drain loop too: the transport
	// never retries a 429 (at Retry-After, a throttled fleet would come
	// back in step), the loop spreads it over its pace.
	e.clock.Set(rec.NextAttempt)
	r2 := e.waitAttempts(2, 1)
	if n := len(e.sim.Exchanges()); n != 3 {
		t.Fatalf("%d requests, want 3: the transport retried a 429", n)
	}
	if wait := r2.NextAttempt.Sub(rec.NextAttempt); wait <= 0 || wait > time.Second+100*time.Millisecond {
		t.Errorf("event 2 due %s after its 429, want within the first pace (BackoffMin, 1s)", wait)
	}
	e.clock.WaitSleeper(t, r2.NextAttempt, 1) // the loop waits for event 2's turn
	e.clock.Set(r2.NextAttempt)
	e.waitState(2, outbox.Delivered)
	if r2 := e.store.get(2); r2.Attempts != 2 {
		t.Errorf("event 2 took %d attempts, want 2: one throttled, one delivered", r2.Attempts)
	}
	if st := e.up.Status(); st.TransportRetries != 0 {
		t.Errorf("transport retries %d, want 0", st.TransportRetries)
	}
	if got, want := e.licences(), licencesOf(1, 2); !slices.Equal(got, want) {
		t.Errorf("accepted %v, want %v", got, want)
	}
}

func TestStrictOrderAcrossRetries(t *testing.T) {
	// Per event, the answers it gets before it succeeds (event 5 is refused).
	plan := map[string][]punchsim.Fault{
		event(1).DriverLicense: {{Kind: punchsim.ServerError}, {Kind: punchsim.Reset}},
		event(3).DriverLicense: {{Kind: punchsim.Unsigned}},
		event(4).DriverLicense: {{Kind: punchsim.RateLimited, RetryAfter: "2"}, {Kind: punchsim.SignTest}},
		event(5).DriverLicense: {{Kind: punchsim.BadRequest}},
	}
	var mu sync.Mutex
	faults := func(x punchsim.Exchange) punchsim.Fault {
		mu.Lock()
		defer mu.Unlock()
		q := plan[x.Punch.DriverLicense]
		if len(q) == 0 {
			return punchsim.Fault{}
		}
		plan[x.Punch.DriverLicense] = q[1:]
		return q[0]
	}
	e := newEnv(t, punchsim.Options{Faults: faults}, nil, nil)
	e.store.add(event(1), event(2), event(3), event(4), event(5), event(6))
	e.start()
	e.drive(func() bool { return e.store.pending() == 0 })

	if got, want := e.licences(), licencesOf(1, 2, 3, 4, 6); !slices.Equal(got, want) {
		t.Fatalf("accepted %v, want %v", got, want)
	}
	if r5 := e.store.get(5); r5.State != outbox.Dead {
		t.Errorf("event 5: %+v, want dead", r5)
	}
	// Every request went to the oldest event not yet settled.
	index := map[string]int{}
	for i := 1; i <= 6; i++ {
		index[event(i).DriverLicense] = i
	}
	last := 0
	for _, x := range e.sim.Exchanges() {
		i := index[x.Punch.DriverLicense]
		if i < last {
			t.Errorf("exchange %d sent event %d after event %d", x.Seq, i, last)
		}
		last = i
	}
	if n := len(e.sim.Exchanges()); n != 11 {
		t.Errorf("%d exchanges, want 11 (6 events + 5 failures)", n)
	}
}

// drive advances the fake clock to each sleep of the loop until done
// holds.
func (e *env) drive(done func() bool) {
	e.t.Helper()
	deadline := time.After(testsupport.Patience(20 * time.Second))
	for !done() {
		select {
		case <-deadline:
			e.t.Fatalf("drive: not done; records %+v", e.store.snapshot())
		default:
		}
		e.store.mu.Lock()
		sch := e.store.changed
		e.store.mu.Unlock()
		cch := e.clock.Changed()
		if s := e.clock.Sleepers(); len(s) > 0 {
			e.clock.Set(s[0])
			continue
		}
		if done() {
			return
		}
		select {
		case <-sch:
		case <-cch:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func TestWakeTriesHeadNow(t *testing.T) {
	for _, tc := range []struct {
		name     string
		status   int
		wantSend bool
	}{
		{"after a network error", 0, true},
		{"after a 500", 500, true},
		{"not after a 429", 429, false},
		{"not after a 503", 503, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, punchsim.Options{}, nil, nil)
			next := e.clock.Now().Add(5 * time.Minute)
			e.store.put(outbox.Record{State: outbox.Pending, Event: event(1), Attempts: 9, NextAttempt: next,
				LastError: &outbox.AttemptError{Status: tc.status, Err: "earlier failure"}})
			e.start()
			e.clock.WaitSleeper(t, next, 1)
			e.up.Wake()
			if tc.wantSend {
				e.waitState(1, outbox.Delivered)
				return
			}
			e.clock.WaitSleeper(t, next, 2)
			if n := len(e.sim.Exchanges()); n != 0 {
				t.Errorf("Wake sent %d requests", n)
			}
		})
	}
}

func TestWakeKeepsMinimumSpacing(t *testing.T) {
	e := newEnv(t, punchsim.Options{}, nil, nil)
	start := e.clock.Now()
	e.store.put(outbox.Record{State: outbox.Pending, Event: event(1), Attempts: 9})
	e.sim.Inject(punchsim.Fault{Kind: punchsim.ServerError})
	e.start()
	rec := e.waitAttempts(1, 10)
	if !rec.NextAttempt.After(start.Add(time.Second)) {
		t.Skipf("jitter drew a wait under BackoffMin (%s); nothing to cut short", rec.NextAttempt.Sub(start))
	}
	e.clock.WaitSleeper(t, rec.NextAttempt, 1)
	e.up.Wake() // e.g. connectivity flapped right after the failure
	e.clock.WaitSleeper(t, start.Add(time.Second), 1)
	if n := len(e.sim.Exchanges()); n != 1 {
		t.Fatalf("Wake retried at once: %d requests", n)
	}
	e.clock.Set(start.Add(time.Second))
	e.waitState(1, outbox.Delivered)
}

func TestHeldEventWaitsForTrustedClock(t *testing.T) {
	var mu sync.Mutex
	trusted := false
	const stamped = "2026-11-28T10:31:02.000+08:00"
	stamp := func(r outbox.Record) (string, bool) {
		mu.Lock()
		defer mu.Unlock()
		if !trusted {
			return "", false
		}
		return stamped, true
	}
	e := newEnv(t, punchsim.Options{}, nil, func(c *Config) { c.Stamp = stamp })
	held := event(1)
	held.EventTime = ""
	e.store.add(held, event(2))
	e.start()

	e.clock.WaitSleeper(t, e.clock.Now().Add(30*time.Second), 1) // ClockRetry
	if n := len(e.sim.Exchanges()); n != 0 {
		t.Fatalf("an unstamped event was sent (%d requests)", n)
	}
	if st := e.up.Status(); !st.WaitingForClock || st.HeadID != 1 {
		t.Errorf("status %+v: want waiting for clock", st)
	}
	mu.Lock()
	trusted = true
	mu.Unlock()
	e.up.Wake()
	e.waitState(2, outbox.Delivered)
	if got := e.sim.Accepted()[0].EventTime; got != stamped {
		t.Errorf("sent event_time %q, want %q", got, stamped)
	}
	if r := e.store.get(1); r.Event.EventTime != stamped || e.store.count("set_event_time") != 1 {
		t.Errorf("stamp not stored: %+v", r)
	}
	if st := e.up.Status(); st.WaitingForClock {
		t.Error("still waiting for clock")
	}
}

func TestIdleLoopDoesNotPoll(t *testing.T) {
	e := newEnv(t, punchsim.Options{}, nil, nil)
	e.start()
	e.store.waitFor(t, "first head read", func(s *fakeStore) bool { return s.calls["head"] >= 1 })
	time.Sleep(50 * time.Millisecond) // a busy loop would read the head thousands of times
	if n := e.store.count("head"); n != 1 {
		t.Errorf("idle loop read the head %d times", n)
	}
	if w := e.clock.Sleepers(); len(w) != 0 {
		t.Errorf("idle loop holds timers: %v", w)
	}

	// Offline: one attempt, then one timer until the backoff ends.
	if err := e.sim.Stop(); err != nil {
		t.Fatal(err)
	}
	e.store.add(event(1))
	e.up.Wake()
	rec := e.waitAttempts(1, 1)
	e.clock.WaitSleeper(t, rec.NextAttempt, 1)
	heads := e.store.count("head")
	time.Sleep(50 * time.Millisecond)
	if n := e.store.count("head"); n != heads {
		t.Errorf("offline loop read the head %d more times while sleeping", n-heads)
	}
	if err := e.sim.Start(); err != nil {
		t.Fatal(err)
	}
	e.clock.Set(rec.NextAttempt)
	e.waitState(1, outbox.Delivered)
}

func TestStoreFailures(t *testing.T) {
	e := newEnv(t, punchsim.Options{}, nil, nil)
	var mu sync.Mutex
	failHead, failMark := 1, 2
	e.store.OnHead = func() error {
		mu.Lock()
		defer mu.Unlock()
		if failHead > 0 {
			failHead--
			return fmt.Errorf("disk on fire")
		}
		return nil
	}
	e.store.OnMarkDelivered = func(uint64, time.Time) error {
		mu.Lock()
		defer mu.Unlock()
		if failMark > 0 {
			failMark--
			return fmt.Errorf("no space left on device")
		}
		return nil
	}
	e.store.add(event(1), event(2))
	e.start()
	e.drive(func() bool { return e.store.pending() == 0 })

	// Delivered once each: a failed MarkDelivered is retried, not re-sent.
	if got, want := e.licences(), licencesOf(1, 2); !slices.Equal(got, want) {
		t.Errorf("accepted %v, want %v", got, want)
	}
	if n := len(e.sim.Exchanges()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
	if st := e.up.Status(); st.StoreError != "" || st.Delivered != 2 {
		t.Errorf("status %+v", st)
	}
	logs := e.logs.String()
	if strings.Count(logs, "outbox error") != 2 || strings.Count(logs, "outbox recovered") != 2 {
		t.Errorf("want each outbox failure streak logged once and its recovery once:\n%s", logs)
	}
}

func TestScheduleFromAClockThatRanAheadIsDueNow(t *testing.T) {
	e := newEnv(t, punchsim.Options{}, nil, nil)
	// Scheduled while the wall clock read a month ahead, then corrected.
	e.store.put(outbox.Record{State: outbox.Pending, Event: event(1), Attempts: 3,
		NextAttempt: e.clock.Now().Add(30 * 24 * time.Hour), LastError: &outbox.AttemptError{Status: 500}})
	e.start()
	e.waitState(1, outbox.Delivered)
}

func TestRepeatedFailureLoggedOnce(t *testing.T) {
	e := newEnv(t, punchsim.Options{}, nil, nil)
	e.store.add(event(1))
	fail := punchsim.Fault{Kind: punchsim.ServerError}
	e.sim.Inject(fail, fail, fail, punchsim.Fault{Kind: punchsim.Reset})
	e.start()
	e.drive(func() bool { return e.store.pending() == 0 })
	logs := e.logs.String()
	for msg, want := range map[string]int{
		"punch delivery failing":               1, // the first 500
		"punch delivery still failing":         1, // the reset: a different failure
		"punch delivery failed again":          2, // the repeated 500s, at debug level
		"punch delivery recovered":             1,
		`"level":"WARN","msg":"punch delivery`: 2,
	} {
		if got := strings.Count(logs, msg); got != want {
			t.Errorf("%q logged %d times, want %d", msg, got, want)
		}
	}
	if st := e.up.Status(); st.Retried != 4 || st.Delivered != 1 || st.LastError == nil || st.LastError.Kind != "network" {
		t.Errorf("status %+v", st)
	}
}
