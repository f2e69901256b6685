package outbox

import (
	"testing"
	"time"
)

func TestHeadIsOldestPending(t *testing.T) {
	o, clk := openTest(t, Options{})
	if _, ok, err := o.Head(); err != nil || ok {
		t.Fatalf("empty outbox head: ok %v err %v", ok, err)
	}
	for i := range 4 {
		mustEnqueue(t, o, event(i))
	}
	head := func() uint64 {
		t.Helper()
		r, ok, err := o.Head()
		if err != nil || !ok {
			t.Fatalf("Head: %v %v", ok, err)
		}
		return r.ID
	}
	if h := head(); h != 1 {
		t.Fatalf("head %d, want 1", h)
	}
	// A failure keeps it at the head: order is strict, the caller waits.
	next := clk.Now().Add(time.Minute)
	if err := o.RecordFailure(1, AttemptError{At: clk.Now(), Status: 503}, next); err != nil {
		t.Fatal(err)
	}
	r, _, _ := o.Head()
	if r.ID != 1 || !r.NextAttempt.Equal(next) {
		t.Fatalf("head after failure %d due %v, want 1 due %v", r.ID, r.NextAttempt, next)
	}
	if err := o.MarkDelivered(1, clk.Now()); err != nil {
		t.Fatal(err)
	}
	if err := o.DeadLetter(2, AttemptError{At: clk.Now(), Status: 400}, "PARAM_ERROR"); err != nil {
		t.Fatal(err)
	}
	if h := head(); h != 3 {
		t.Fatalf("head %d, want 3 after delivering 1 and dead-lettering 2", h)
	}
}

func TestMarkDelivered(t *testing.T) {
	o, clk := openTest(t, Options{})
	id := mustEnqueue(t, o, event(0))
	at := clk.Now().Add(5 * time.Second)
	if err := o.MarkDelivered(id, at); err != nil {
		t.Fatal(err)
	}
	r := mustGet(t, o, id)
	if r.State != Delivered || !r.DeliveredAt.Equal(at) || r.Attempts != 1 {
		t.Fatalf("record %+v, want delivered at %v by its 1st attempt", r, at)
	}
	s := mustStats(t, o)
	if s.Pending != 0 || s.Delivered != 1 || !s.LastDelivered.Equal(at) {
		t.Fatalf("stats %+v", s)
	}
	wantErr(t, o.MarkDelivered(id, at), ErrNotPending)
	wantErr(t, o.MarkDelivered(99, at), ErrNotFound)
}

func TestRecordFailure(t *testing.T) {
	o, clk := openTest(t, Options{})
	id := mustEnqueue(t, o, event(0))
	for n := 1; n <= 3; n++ {
		e := AttemptError{At: clk.Now(), Status: 500 + n, Code: "SYSTEM_ERROR", Message: "busy", RequestID: "req", Err: ""}
		next := clk.Now().Add(time.Duration(n) * time.Minute)
		if err := o.RecordFailure(id, e, next); err != nil {
			t.Fatal(err)
		}
		r := mustGet(t, o, id)
		if r.Attempts != n || r.LastError == nil || *r.LastError != e || !r.NextAttempt.Equal(next) || r.State != Pending {
			t.Fatalf("after failure %d: %+v (last error %+v)", n, r, r.LastError)
		}
	}
	wantErr(t, o.RecordFailure(77, AttemptError{}, clk.Now()), ErrNotFound)
}

func TestDeadLetter(t *testing.T) {
	o, clk := openTest(t, Options{})
	a := mustEnqueue(t, o, event(0))
	b := mustEnqueue(t, o, event(1))
	e := AttemptError{At: clk.Now(), Status: 400, Code: "PARAM_ERROR", Message: "plate", RequestID: "r1"}
	if err := o.DeadLetter(a, e, "400 PARAM_ERROR"); err != nil {
		t.Fatal(err)
	}
	r := mustGet(t, o, a)
	if r.State != Dead || r.DeadReason != "400 PARAM_ERROR" || !r.DeadAt.Equal(clk.Now()) || r.Attempts != 1 || *r.LastError != e {
		t.Fatalf("dead record %+v", r)
	}
	// Without an attempt error nothing counts as an attempt.
	if err := o.DeadLetter(b, AttemptError{}, "no licence"); err != nil {
		t.Fatal(err)
	}
	if r := mustGet(t, o, b); r.Attempts != 0 || r.LastError != nil {
		t.Fatalf("dead without attempt: %+v", r)
	}
	s := mustStats(t, o)
	if s.Dead != 2 || s.Pending != 0 {
		t.Fatalf("stats %+v", s)
	}
	wantErr(t, o.DeadLetter(a, e, "again"), ErrNotPending)
}

func TestSetEventTime(t *testing.T) {
	o, clk := openTest(t, Options{})
	r := event(0)
	r.Event.EventTime = "" // held: the clock was untrusted
	id := mustEnqueue(t, o, r)
	const stamp = "2026-11-28T10:30:00.123+08:00"
	for _, bad := range []string{"", "2026-11-28 10:30:00", "2026-11-28T10:30:00+08:00", "2026-11-28T10:30:00.123Z"} {
		wantErr(t, o.SetEventTime(id, bad), ErrBadEventTime)
	}
	if err := o.SetEventTime(id, stamp); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, o, id).Event.EventTime; got != stamp {
		t.Fatalf("event time %q, want %q", got, stamp)
	}
	if err := o.MarkDelivered(id, clk.Now()); err != nil {
		t.Fatal(err)
	}
	wantErr(t, o.SetEventTime(id, stamp), ErrNotPending)
	wantErr(t, o.SetEventTime(55, stamp), ErrNotFound)
}
