package outbox

import (
	"errors"
	"path/filepath"
	"testing"
)

// TestDriverPersists: the driver set survives a close and reopen, can be
// read read-only, and is gone after ClearDriver.
func TestDriverPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	o, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := o.Driver(); ok || err != nil {
		t.Fatalf("driver in a new file: %v, %v", ok, err)
	}
	if err := o.SetDriver(Driver{Licence: "42108319880906011X", Company: "440300000001"}); err != nil {
		t.Fatal(err)
	}
	o.Close()
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	d, ok, err := ro.Driver()
	if !ok || err != nil || d.Licence != "42108319880906011X" || d.Company != "440300000001" || d.SetAt.IsZero() {
		t.Fatalf("driver after reopen: %+v, %v, %v", d, ok, err)
	}
	if err := ro.ClearDriver(); !errors.Is(err, ErrReadOnly) {
		t.Errorf("clear on a read-only outbox: %v", err)
	}
	ro.Close()
	rw := mustOpen(t, path, Options{})
	if err := rw.ClearDriver(); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := rw.Driver(); ok || err != nil {
		t.Errorf("driver after clear: %v, %v", ok, err)
	}
}

func TestDriverCheck(t *testing.T) {
	o, _ := openTest(t, Options{})
	for _, d := range []Driver{
		{},
		{Licence: "4210831988090601100X"}, // 20 characters
		{Licence: "42108319880906011X", Company: "44030000000100001"},
		{Licence: "421083 1988"},
		{Licence: "粤42108319880906"},
	} {
		if err := o.SetDriver(d); !errors.Is(err, ErrBadDriver) {
			t.Errorf("SetDriver(%+v) = %v, want ErrBadDriver", d, err)
		}
	}
}

// TestEnqueueDead: a record that arrives with a dead reason is stored
// dead, counted as dead, and never offered for delivery.
func TestEnqueueDead(t *testing.T) {
	o, _ := openTest(t, Options{})
	r := event(0)
	r.Event.DriverLicense = ""
	r.DeadReason = "no driver licence from the meter"
	id, dup, err := o.EnqueueDead(r, r.DeadReason)
	if err != nil || dup {
		t.Fatal(err, dup)
	}
	got, err := o.Get(id)
	if err != nil || got.State != Dead || got.DeadReason != r.DeadReason || got.DeadAt.IsZero() {
		t.Fatalf("record %+v, %v", got, err)
	}
	st, err := o.Stats()
	if err != nil || st.Dead != 1 || st.Pending != 0 {
		t.Errorf("stats %+v, %v", st, err)
	}
	if _, ok, err := o.Head(); ok || err != nil {
		t.Errorf("a dead record is at the head: %v, %v", ok, err)
	}
}
