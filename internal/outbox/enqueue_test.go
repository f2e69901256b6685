package outbox

import (
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"taxi-agent/internal/punch"
)

func TestEnqueueAssignsIDsInArrivalOrder(t *testing.T) {
	o, _ := openTest(t, Options{})
	for i := range 5 {
		if id := mustEnqueue(t, o, event(i)); id != uint64(i+1) {
			t.Fatalf("event %d got id %d, want %d", i, id, i+1)
		}
	}
	r := mustGet(t, o, 3)
	want := event(2)
	if r.State != Pending || r.Identity != want.Identity || r.Event != want.Event || r.Attempts != 0 {
		t.Fatalf("stored %+v, want pending copy of %+v", r, want)
	}
	if !r.ReceivedAt.Equal(want.ReceivedAt) || !r.MeterTime.Equal(want.MeterTime) || r.BootID != want.BootID || r.Monotonic != want.Monotonic {
		t.Fatalf("receipt fields %+v, want those of %+v", r, want)
	}
}

func TestEnqueueClearsHistoryFields(t *testing.T) {
	o, _ := openTest(t, Options{})
	r := event(0)
	r.ID, r.State, r.Attempts, r.DeadReason = 99, Dead, 5, "x"
	r.LastError = &AttemptError{Status: 500}
	id := mustEnqueue(t, o, r)
	got := mustGet(t, o, id)
	if got.ID != 1 || got.State != Pending || got.Attempts != 0 || got.LastError != nil || got.DeadReason != "" {
		t.Fatalf("stored %+v, want a fresh pending record 1", got)
	}
}

func TestEnqueueSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	o := mustOpen(t, path, Options{})
	for i := range 3 {
		mustEnqueue(t, o, event(i))
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	o = mustOpen(t, path, Options{})
	if got := listAll(t, o, Pending, 10); len(got) != 3 {
		t.Fatalf("after reopen pending = %v, want 3 ids", got)
	}
	if id := mustEnqueue(t, o, event(3)); id != 4 {
		t.Fatalf("id after reopen = %d, want 4", id)
	}
}

// txID reads bbolt's transaction id: it moves on every commit.
func txID(t *testing.T, o *Outbox) int {
	t.Helper()
	var id int
	if err := o.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestEnqueueDuplicatePendingWritesNothing(t *testing.T) {
	o, _ := openTest(t, Options{})
	first := mustEnqueue(t, o, event(0))
	mustEnqueue(t, o, event(1))
	before := txID(t, o)
	id, dup, err := o.Enqueue(event(0))
	if err != nil || !dup || id != first {
		t.Fatalf("re-sent frame: id %d dup %v err %v, want %d true nil", id, dup, err, first)
	}
	if after := txID(t, o); after != before {
		t.Fatalf("duplicate committed a transaction (%d -> %d)", before, after)
	}
	if s := mustStats(t, o); s.Pending != 2 {
		t.Fatalf("pending = %d, want 2", s.Pending)
	}
}

func TestEnqueueDuplicateDead(t *testing.T) {
	o, _ := openTest(t, Options{})
	id := mustEnqueue(t, o, event(0))
	if err := o.DeadLetter(id, AttemptError{Status: 400}, "PARAM_ERROR"); err != nil {
		t.Fatal(err)
	}
	got, dup, err := o.Enqueue(event(0))
	if err != nil || !dup || got != id {
		t.Fatalf("re-sent frame of a dead record: %d %v %v, want %d true nil", got, dup, err, id)
	}
}

func TestEnqueueDuplicateDeliveredWithinRetention(t *testing.T) {
	o, clk := openTest(t, Options{Retention: 48 * time.Hour})
	id := mustEnqueue(t, o, event(0))
	if err := o.MarkDelivered(id, clk.Now()); err != nil {
		t.Fatal(err)
	}
	clk.Advance(47 * time.Hour)
	got, dup, err := o.Enqueue(event(0))
	if err != nil || !dup || got != id {
		t.Fatalf("within retention: %d %v %v, want %d true nil", got, dup, err, id)
	}
	// Past retention (even before a prune ran) the same identity is a new event.
	clk.Advance(2 * time.Hour)
	got, dup, err = o.Enqueue(event(0))
	if err != nil || dup || got == id {
		t.Fatalf("past retention: %d %v %v, want a new id", got, dup, err)
	}
	// ... and the index now points at the new record.
	again, dup, err := o.Enqueue(event(0))
	if err != nil || !dup || again != got {
		t.Fatalf("re-sent again: %d %v %v, want %d true nil", again, dup, err, got)
	}
}

func TestEnqueueEmptyIdentityIsKept(t *testing.T) {
	o, _ := openTest(t, Options{})
	r := event(0)
	r.Identity = ""
	a := mustEnqueue(t, o, r)
	b := mustEnqueue(t, o, r)
	if a == b {
		t.Fatalf("two events without identity share id %d", a)
	}
}

func TestOpenShift(t *testing.T) {
	o, _ := openTest(t, Options{})
	licence := func() string {
		t.Helper()
		l, err := o.OpenShiftLicence()
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	at := time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC)
	ev := func(typ, lic string, meterTime time.Time, ident string) Record {
		return Record{Event: punch.Event{Type: typ, DriverLicense: lic}, MeterTime: meterTime, Identity: ident}
	}
	if l := licence(); l != "" {
		t.Fatalf("new outbox has open shift %q", l)
	}
	mustEnqueue(t, o, ev(punch.SignIn, "A-011X", at, "in-a"))
	if l := licence(); l != "A-011X" {
		t.Fatalf("after sign-in: %q", l)
	}
	// A sign-in without a licence does not replace the open one.
	mustEnqueue(t, o, ev(punch.SignIn, "", at.Add(time.Minute), "in-empty"))
	// A late re-sent sign-out of another driver's shift does not close it.
	mustEnqueue(t, o, ev(punch.SignOut, "B-022X", at.Add(time.Hour), "out-b"))
	// Nor does a re-sent sign-out of this driver's earlier shift.
	mustEnqueue(t, o, ev(punch.SignOut, "A-011X", at.Add(-time.Hour), "out-a-earlier"))
	if l := licence(); l != "A-011X" {
		t.Fatalf("after unrelated sign-outs: %q", l)
	}
	// A duplicate sign-in changes nothing either.
	if _, dup, err := o.Enqueue(ev(punch.SignIn, "A-011X", at, "in-a")); err != nil || !dup {
		t.Fatalf("duplicate sign-in: %v %v", dup, err)
	}
	mustEnqueue(t, o, ev(punch.SignOut, "A-011X", at.Add(8*time.Hour), "out-a"))
	if l := licence(); l != "" {
		t.Fatalf("after sign-out: %q", l)
	}
	mustEnqueue(t, o, ev(punch.SignIn, "C-033X", at.Add(9*time.Hour), "in-c"))
	// A sign-out without licence (the meter fills it from here) closes it.
	mustEnqueue(t, o, ev(punch.SignOut, "", at.Add(10*time.Hour), "out-c"))
	if l := licence(); l != "" {
		t.Fatalf("after sign-out without licence: %q", l)
	}
}

func TestOpenShiftSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	o := mustOpen(t, path, Options{})
	mustEnqueue(t, o, event(0)) // a sign-in
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	o = mustOpen(t, path, Options{})
	if l, err := o.OpenShiftLicence(); err != nil || l != event(0).Event.DriverLicense {
		t.Fatalf("open shift after reopen: %q %v", l, err)
	}
}
