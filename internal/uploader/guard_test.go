package uploader

import (
	"slices"
	"strings"
	"testing"

	"taxi-agent/internal/outbox"
	"taxi-agent/internal/punch"
	"taxi-agent/internal/punchsim"
)

// backlog adds n events and returns their licences in order.
func backlog(e *env, n int) []string {
	var evs []punch.Event
	var ids []int
	for i := 1; i <= n; i++ {
		evs = append(evs, event(i))
		ids = append(ids, i)
	}
	e.store.add(evs...)
	return licencesOf(ids...)
}

// dead counts the dead-lettered records.
func (s *fakeStore) dead() int {
	n := 0
	for _, r := range s.snapshot() {
		if r.State == outbox.Dead {
			n++
		}
	}
	return n
}

// TestSystemicInvalidSerial: 50 pending and an endpoint that answers 400
// INVALID_REQUEST about the Wechatpay-Serial (the terminal names a key
// WeChat Pay does not sign with). The queue holds at once instead of
// dead-lettering the backlog, status says why with WeChat Pay's message
// and Request-ID, and once the endpoint accepts again a probe of the head
// resumes delivery, in order.
func TestSystemicInvalidSerial(t *testing.T) {
	e := newEnv(t, punchsim.Options{Faults: func(punchsim.Exchange) punchsim.Fault {
		return punchsim.Fault{Kind: punchsim.InvalidSerial}
	}}, nil, nil)
	want := backlog(e, 50)
	e.start()
	e.store.waitFor(t, "held", func(s *fakeStore) bool { return s.recs[0].Attempts >= 1 })
	st := e.up.Status()
	x := e.sim.Exchanges()[len(e.sim.Exchanges())-1]
	// At most 3 may be dead by the issue; a code that names the setup
	// holds at the first.
	if dead := e.store.dead(); dead != 0 {
		t.Fatalf("%d dead-lettered, want none: INVALID_REQUEST about the serial is the terminal's setup", dead)
	}
	if e.store.pending() != 50-e.store.dead() {
		t.Fatalf("pending %d", e.store.pending())
	}
	if !strings.Contains(st.Held, "INVALID_REQUEST") || !strings.Contains(st.Held, "平台证书序列号Wechatpay-Serial错误") ||
		!strings.Contains(st.Held, x.RequestID) || !strings.Contains(st.Held, "public_key_id") {
		t.Errorf("status does not say why: %q", st.Held)
	}
	if h := st.HeldAnswer; h == nil || h.Code != "INVALID_REQUEST" || h.RequestID != x.RequestID || h.Status != 400 {
		t.Errorf("held answer %+v", st.HeldAnswer)
	}
	// Held retries slowly: the next attempt is HeldRetry away.
	if rec := e.store.get(1); rec.NextAttempt.Sub(e.clock.Now()) < e.up.cfg.HeldRetry*9/10 {
		t.Errorf("held head due again in %s, want about HeldRetry", rec.NextAttempt.Sub(e.clock.Now()))
	}

	// The fix (the right key on the platform side); the probe delivers.
	e.sim.SetFaults(nil)
	e.drive(func() bool { return e.store.pending() == 0 })
	if got := e.licences(); !slices.Equal(got, want[e.store.dead():]) {
		t.Fatalf("accepted %v, want the backlog in order", got)
	}
	if st := e.up.Status(); st.Held != "" || st.HeldAnswer != nil {
		t.Errorf("still held after the fix: %+v", st)
	}
}

// TestSystemicStreak: every event is refused with the same event-level
// code (here PARAM_ERROR: a wrong plate or region in the config). After
// three different events in a row the queue holds instead of
// dead-lettering the backlog; after the fix it resumes in order.
func TestSystemicStreak(t *testing.T) {
	e := newEnv(t, punchsim.Options{Faults: func(punchsim.Exchange) punchsim.Fault {
		return punchsim.Fault{Kind: punchsim.BadRequest, Message: "plate_number与商户不匹配"}
	}}, nil, nil)
	want := backlog(e, 50)
	e.start()
	e.store.waitFor(t, "held", func(s *fakeStore) bool { return s.recs[2].Attempts >= 1 })
	st := e.up.Status()
	if dead := e.store.dead(); dead != DefaultSystemicStreak-1 {
		t.Fatalf("%d dead-lettered, want %d before the streak holds", dead, DefaultSystemicStreak-1)
	}
	if !strings.Contains(st.Held, "PARAM_ERROR") || !strings.Contains(st.Held, "plate_number与商户不匹配") ||
		!strings.Contains(st.Held, "3 different events in a row") {
		t.Errorf("status does not say why: %q", st.Held)
	}
	if h := st.HeldAnswer; h == nil || h.Streak != 3 || h.RequestID == "" {
		t.Errorf("held answer %+v", st.HeldAnswer)
	}
	// A probe that gets the same answer keeps the queue held.
	// The loop must be asleep before the clock moves: a timer set after
	// the move would be due a whole wait later, and never fire.
	next := e.store.get(3).NextAttempt
	e.clock.WaitSleeper(t, next, 1)
	e.clock.Set(next)
	e.store.waitFor(t, "second probe", func(s *fakeStore) bool { return s.recs[2].Attempts >= 2 })
	if e.store.dead() != 2 || e.up.Status().Held == "" {
		t.Fatalf("a second refusal of the held head: dead %d, status %+v", e.store.dead(), e.up.Status())
	}

	e.sim.SetFaults(nil)
	e.drive(func() bool { return e.store.pending() == 0 })
	if got := e.licences(); !slices.Equal(got, want[2:]) {
		t.Fatalf("accepted %v, want the backlog from event 3 in order", got)
	}
}

// TestEventRefusalsStillDeadLetter: refusals of different kinds do not
// make a streak; an isolated PARAM_ERROR still dead-letters its event.
func TestEventRefusalsStillDeadLetter(t *testing.T) {
	e := newEnv(t, punchsim.Options{}, nil, nil)
	e.sim.Inject(punchsim.Fault{Kind: punchsim.BadRequest}, punchsim.Fault{Kind: punchsim.BadRequest},
		punchsim.Fault{}, punchsim.Fault{Kind: punchsim.BadRequest}, punchsim.Fault{Kind: punchsim.BadRequest, Code: "OTHER"})
	backlog(e, 6)
	e.start()
	e.drive(func() bool { return e.store.pending() == 0 })
	if d := e.store.dead(); d != 4 {
		t.Fatalf("%d dead, want 4: a delivery or another code breaks the streak", d)
	}
}
