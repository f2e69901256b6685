package outbox

import (
	"path/filepath"
	"testing"
	"time"
)

func TestPruneByRetention(t *testing.T) {
	o, clk := openTest(t, Options{Retention: 10 * 24 * time.Hour})
	var old, recent, pending []uint64
	for i := range 3 * deleteBatch {
		id := mustEnqueue(t, o, event(i))
		switch {
		case i%3 == 0:
			pending = append(pending, id)
			continue
		case i < 2*deleteBatch:
			old = append(old, id)
		default:
			recent = append(recent, id)
		}
		if err := o.MarkDelivered(id, clk.Now()); err != nil {
			t.Fatal(err)
		}
		if i == 2*deleteBatch-1 {
			clk.Advance(5 * 24 * time.Hour)
		}
	}
	// Ten days after the old deliveries: only those go.
	n, err := o.Prune(clk.Now().Add(5 * 24 * time.Hour))
	if err != nil || n != len(old) {
		t.Fatalf("Prune = %d %v, want %d", n, err, len(old))
	}
	for _, id := range old {
		if _, err := o.Get(id); err == nil {
			t.Fatalf("record %d delivered 10 days ago survived", id)
		}
	}
	for _, id := range append(recent, pending...) {
		mustGet(t, o, id)
	}
	s := mustStats(t, o)
	if s.Delivered != uint64(len(recent)) || s.Pending != uint64(len(pending)) {
		t.Fatalf("stats %+v", s)
	}
	// A pruned record's identity is forgotten.
	if _, dup, err := o.Enqueue(event(1)); err != nil || dup {
		t.Fatalf("re-sent frame of a pruned record: dup %v err %v", dup, err)
	}
	if n, err := o.Prune(clk.Now().Add(5 * 24 * time.Hour)); n != 0 || err != nil {
		t.Fatalf("second Prune = %d %v", n, err)
	}
}

func TestPruneRunsDailyOnDelivery(t *testing.T) {
	o, clk := openTest(t, Options{Retention: time.Hour})
	a := mustEnqueue(t, o, event(0))
	b := mustEnqueue(t, o, event(1))
	c := mustEnqueue(t, o, event(2))
	if err := o.MarkDelivered(a, clk.Now()); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Hour)
	// Open pruned moments ago: a delivery now does not prune yet.
	if err := o.MarkDelivered(b, clk.Now()); err != nil {
		t.Fatal(err)
	}
	mustGet(t, o, a)
	clk.Advance(23 * time.Hour)
	if err := o.MarkDelivered(c, clk.Now()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []uint64{a, b} {
		if _, err := o.Get(id); err == nil {
			t.Fatalf("record %d past retention survived the daily prune", id)
		}
	}
	mustGet(t, o, c)
}

func TestPruneOnOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	clk := newClock()
	opts := Options{Retention: time.Hour, Now: clk.Now}
	o := mustOpen(t, path, opts)
	id := mustEnqueue(t, o, event(0))
	if err := o.MarkDelivered(id, clk.Now()); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour + time.Second)
	o = mustOpen(t, path, opts)
	if s := mustStats(t, o); s.Delivered != 0 {
		t.Fatalf("delivered %d after reopen past retention, want 0", s.Delivered)
	}
}
