package demo

import (
	"context"
	"fmt"
	"time"

	"taxi-agent/internal/daemon"
	"taxi-agent/internal/metersim"
	"taxi-agent/internal/outbox"
	"taxi-agent/internal/punch"
	"taxi-agent/internal/punchsim"
	"taxi-agent/internal/redact"
	"taxi-agent/internal/stamp"
)

// The drivers of the story, by 从业资格证号.
const (
	driverA = "42108319880906011X"
	driverB = "440301199001011234"
	driverC = "440303198512125678"
)

type want struct{ typ, licence string }

// play runs the story against a started daemon.
func (s *scenario) play(ctx context.Context, m *metersim.Meter, srv *punchsim.Server, d *daemon.Daemon) (Summary, error) {
	var sum Summary
	ob := d.Outbox()
	t0 := time.Now().In(stamp.Zone).Truncate(time.Minute)
	shiftA := metersim.Shift{Driver: driverA, Trips: 1200, At: t0.Add(-12 * time.Minute), End: t0.Add(-10 * time.Minute)}
	shiftB := metersim.Shift{Driver: driverB, Trips: 1230, At: t0.Add(-9 * time.Minute)}
	shiftC := metersim.Shift{Driver: driverC, Trips: 1260, At: t0.Add(-5 * time.Minute), End: t0.Add(-4 * time.Minute)}
	shiftA2 := metersim.Shift{Driver: driverA, Trips: 1270, At: t0.Add(-3 * time.Minute), End: t0.Add(-2 * time.Minute)}

	send := func(what, outcome string, do func() (metersim.Result, error)) error {
		res, err := do()
		sum.MeterSends += res.Sends
		if err != nil {
			return fmt.Errorf("meter %s: %w", what, err)
		}
		if res.Request != nil && len(res.History) == 0 {
			// A standard sign-in: asked, then reported once, unanswered.
			s.say("meter", "%s → asked who is driving (answer 0x%02X), reported once, no answer expected: %s",
				what, res.Request.Answer, outcome)
			return nil
		}
		s.say("meter", "%s → agent answered 0x%02X after %d send(s): %s", what, res.Answer, res.Sends, outcome)
		return nil
	}
	event := func(what string, do func() (metersim.Result, error)) error {
		sum.MeterEvents++
		return send(what, "stored on disk", do)
	}
	delivered := func(n uint64) error {
		if err := wait(ctx, 15*time.Second, func() bool { return stats(ob).Delivered >= n }); err != nil {
			return fmt.Errorf("waiting for %d deliveries (have %d): %w", n, stats(ob).Delivered, err)
		}
		return nil
	}

	s.say("story", "— shift 1: driver %s signs in; the network is up —", redact.Licence(driverA))
	if err := event("sign-in of "+redact.Licence(driverA), func() (metersim.Result, error) { return m.SignIn(ctx, shiftA) }); err != nil {
		return sum, err
	}
	if err := delivered(1); err != nil {
		return sum, err
	}
	if err := send("the same sign-in reported again", "recognised", func() (metersim.Result, error) { return m.SignIn(ctx, shiftA) }); err != nil {
		return sum, err
	}
	if err := wait(ctx, 5*time.Second, func() bool { return d.Link().Stats().Frames.SignIn >= 2 }); err != nil {
		return sum, err
	}
	s.say("agent", "repeated report recognised: still %d event(s) stored, nothing sent twice", total(stats(ob)))
	refused := shiftB
	refused.Result = 0xFF
	if err := send("a sign-in the meter itself refused (操作结果 0xFF)", "counted, no punch", func() (metersim.Result, error) { return m.SignIn(ctx, refused) }); err != nil {
		return sum, err
	}
	if err := wait(ctx, 5*time.Second, func() bool { return d.Link().Stats().FailedSignIns >= 1 }); err != nil {
		return sum, err
	}
	s.say("agent", "failed sign-in counted (%d), shown in 'agent status', never sent", d.Link().Stats().FailedSignIns)

	s.say("story", "— the taxi drives into a tunnel: WeChat Pay is unreachable for %s —", s.offline())
	if err := srv.Stop(); err != nil {
		return sum, fmt.Errorf("take fake endpoint offline: %w", err)
	}
	steps := []struct {
		what string
		do   func() (metersim.Result, error)
	}{
		{"sign-out of " + redact.Licence(driverA), func() (metersim.Result, error) { return m.SignOut(ctx, shiftA) }},
		{"sign-in of " + redact.Licence(driverB), func() (metersim.Result, error) { return m.SignIn(ctx, shiftB) }},
		{"sign-out with an EMPTY licence (some meters omit it)", func() (metersim.Result, error) {
			noLicence := shiftB
			noLicence.Driver = ""
			noLicence.End = t0.Add(-6 * time.Minute)
			return m.SignOut(ctx, noLicence)
		}},
	}
	for _, st := range steps {
		if err := event(st.what, st.do); err != nil {
			return sum, err
		}
	}
	s.say("agent", "the empty licence was filled from the open sign-in (%s)", redact.Licence(driverB))
	end := time.Now().Add(s.offlineFor)
	for time.Now().Before(end) {
		st := stats(ob)
		us := d.Uploader().Status()
		s.say("outbox", "%d pending, oldest %ds old; %d failed attempts so far, next try in %s",
			st.Pending, st.OldestPendingAgeSeconds, us.Retried, max(0, time.Until(us.NextAttempt)).Round(100*time.Millisecond))
		select {
		case <-ctx.Done():
			return sum, ctx.Err()
		case <-time.After(time.Second):
		}
	}

	s.say("story", "— out of the tunnel: the network is back —")
	if err := srv.Start(); err != nil {
		return sum, fmt.Errorf("bring fake endpoint back: %w", err)
	}
	if err := delivered(4); err != nil {
		return sum, err
	}
	s.say("outbox", "backlog drained in arrival order: %d delivered, %d pending", stats(ob).Delivered, stats(ob).Pending)

	s.say("story", "— WeChat Pay rejects the next punch as malformed (400 PARAM_ERROR) —")
	srv.Inject(punchsim.Fault{Kind: punchsim.BadRequest, Message: "driver_license 不存在"})
	if err := event("sign-in of "+redact.Licence(driverC), func() (metersim.Result, error) { return m.SignIn(ctx, shiftC) }); err != nil {
		return sum, err
	}
	if err := wait(ctx, 10*time.Second, func() bool { return stats(ob).Dead >= 1 }); err != nil {
		return sum, fmt.Errorf("waiting for the dead-letter: %w", err)
	}
	if recs, _, err := ob.List(outbox.Dead, 0, 1); err == nil && len(recs) == 1 && recs[0].LastError != nil {
		e := recs[0].LastError
		s.say("outbox", "event %d dead-lettered for a technician: HTTP %d %s %q (Request-ID %s)", recs[0].ID, e.Status, e.Code, e.Message, e.RequestID)
	}
	if err := event("sign-out of "+redact.Licence(driverC), func() (metersim.Result, error) { return m.SignOut(ctx, shiftC) }); err != nil {
		return sum, err
	}
	if err := delivered(5); err != nil {
		return sum, err
	}
	s.say("agent", "the queue went on past the dead-lettered event")

	s.say("story", "— an impostor answers the next punch with a forged 204 —")
	srv.Inject(punchsim.Fault{Kind: punchsim.BadSignature})
	if err := event("sign-in of "+redact.Licence(driverA)+" (shift 3)", func() (metersim.Result, error) { return m.SignIn(ctx, shiftA2) }); err != nil {
		return sum, err
	}
	if err := delivered(6); err != nil {
		return sum, err
	}
	if s.gateway {
		// The gateway verified WeChat Pay's answer and told the agent 503.
		sum.ForgedRefused = forgedThenAccepted(srv.Exchanges())
		s.say("gateway", "the forged 204 did not verify at the gateway: the agent was told 503, re-sent, and a verified 204 accepted it")
	} else {
		sum.ForgedRefused = d.Uploader().Status().UnverifiedAnswers > 0
		s.say("agent", "the forged 204 was not taken as delivery; the event was re-sent and a verified 204 accepted it")
	}

	s.say("story", "— the meter back-fills a sign-out (0x00F1): it carries the meter's own time —")
	if err := event("re-sent sign-out of "+redact.Licence(driverA), func() (metersim.Result, error) {
		return m.SignOut(ctx, shiftA2, metersim.Resend(true))
	}); err != nil {
		return sum, err
	}
	if err := delivered(7); err != nil {
		return sum, err
	}

	st, us := stats(ob), d.Uploader().Status()
	sum.Stored, sum.Delivered, sum.DeadLettered = total(st), st.Delivered, st.Dead
	sum.Retries, sum.Unverified = us.Retried, us.UnverifiedAnswers
	sum.Accepted = len(srv.Accepted())
	sum.OutOfOrder = outOfOrder(srv.Accepted(), []want{
		{punch.SignIn, driverA}, {punch.SignOut, driverA}, {punch.SignIn, driverB}, {punch.SignOut, driverB},
		{punch.SignOut, driverC}, {punch.SignIn, driverA}, {punch.SignOut, driverA},
	})
	return sum, nil
}

func (s *scenario) offline() string { return s.offlineFor.String() }

func total(st outbox.Stats) uint64 { return st.Pending + st.Dead + st.Delivered }

// outOfOrder counts accepted punches that differ from the expected sequence.
func outOfOrder(got []punchsim.Punch, exp []want) int {
	bad := 0
	for i := range max(len(got), len(exp)) {
		if i >= len(got) || i >= len(exp) || got[i].EventType != exp[i].typ || got[i].DriverLicense != exp[i].licence {
			bad++
		}
	}
	return bad
}

// check prints the summary and says whether it is right.
func (s *scenario) check(sum Summary) error {
	s.say("summary", "meter reported %d events in %d frames (re-sends included)", sum.MeterEvents, sum.MeterSends)
	s.say("summary", "stored %d, delivered %d, dead-lettered %d, failed attempts retried %d, unverified answers refused %d",
		sum.Stored, sum.Delivered, sum.DeadLettered, sum.Retries, sum.Unverified)
	var problems []string
	if sum.Stored != uint64(sum.MeterEvents) {
		problems = append(problems, fmt.Sprintf("stored %d events, the meter reported %d", sum.Stored, sum.MeterEvents))
	}
	if sum.Delivered != 7 || sum.Accepted != 7 {
		problems = append(problems, fmt.Sprintf("delivered %d (endpoint accepted %d), want 7", sum.Delivered, sum.Accepted))
	}
	if sum.DeadLettered != 1 {
		problems = append(problems, fmt.Sprintf("dead-lettered %d, want 1", sum.DeadLettered))
	}
	if sum.OutOfOrder != 0 {
		problems = append(problems, fmt.Sprintf("%d punches out of order or wrong", sum.OutOfOrder))
	}
	if !sum.ForgedRefused {
		problems = append(problems, "the forged 204 was not counted as refused")
	}
	if len(problems) > 0 {
		for _, p := range problems {
			s.say("summary", "WRONG: %s", p)
		}
		return fmt.Errorf("%w: %d problem(s)", errOutcome, len(problems))
	}
	s.say("summary", "OK: every event the meter was told is stored reached WeChat Pay or dead-letter, once, in order")
	return nil
}

// forgedThenAccepted reports whether a punch answered with a forged 204 was
// sent again and accepted afterwards.
func forgedThenAccepted(xs []punchsim.Exchange) bool {
	for i, x := range xs {
		if x.Fault != punchsim.BadSignature || x.Punch == nil {
			continue
		}
		for _, y := range xs[i+1:] {
			if y.Accepted && *y.Punch == *x.Punch {
				return true
			}
		}
	}
	return false
}
