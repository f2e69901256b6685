package outbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"taxi-agent/internal/punch"
	"taxi-agent/internal/testsupport"
)

// newClock returns the outbox tests' clock, which moves only when told.
func newClock() *testsupport.Clock {
	return testsupport.NewClock(time.Date(2026, 11, 28, 2, 30, 0, 0, time.UTC))
}

// openTest opens an outbox in a fresh temporary directory with the clock
// and closes it at the end of the test.
func openTest(t testing.TB, opts Options) (*Outbox, *testsupport.Clock) {
	t.Helper()
	clk := newClock()
	if opts.Now == nil {
		opts.Now = clk.Now
	}
	o := mustOpen(t, filepath.Join(t.TempDir(), "outbox.db"), opts)
	return o, clk
}

func mustOpen(t testing.TB, path string, opts Options) *Outbox {
	t.Helper()
	o, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		_ = o.Close()
		checkFile(t, path)
	})
	return o
}

// damaged lists the files a test damages on purpose; checkFile leaves
// them alone.
var damaged sync.Map

// damageOnPurpose tells checkFile that the test is about to damage the
// file at path.
func damageOnPurpose(path string) { damaged.Store(path, true) }

// checkFile fails the test unless the outbox file at path passes bbolt's
// consistency check (every page reachable once, no page both free and in
// use) and the outbox's own validation, as bbolt's test helpers check
// every database they close. A file the test removed is not checked.
func checkFile(t testing.TB, path string) {
	t.Helper()
	if _, ok := damaged.Load(path); ok {
		return
	}
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		t.Errorf("check outbox file: %v", err)
		return
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Errorf("check outbox file %s: %v", path, err)
		return
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
	if err != nil {
		t.Errorf("outbox file %s fails bbolt's check:\n%v", path, err)
	}
	if _, err := validate(db, path, fi.Size()); err != nil {
		t.Errorf("outbox file %s fails the outbox's validation: %v", path, err)
	}
}

// event returns the record of the i-th test event.
func event(i int) Record {
	meterTime := time.Date(2026, 11, 28, 10, 30, 0, 0, time.FixedZone("CST", 8*3600)).Add(time.Duration(i) * time.Minute)
	typ := punch.SignIn
	if i%2 == 1 {
		typ = punch.SignOut
	}
	licence := fmt.Sprintf("4210831988090601%02dX", i%100)
	return Record{
		Event: punch.Event{
			Type:          typ,
			DriverLicense: licence,
			PlateNumber:   "粤B12345",
			RegionID:      440300,
			EventTime:     meterTime.Format("2006-01-02T15:04:05.000-07:00"),
		},
		Identity:   fmt.Sprintf("%s|%s|%s|%d", typ, licence, meterTime.Format("200601021504"), 1000+i),
		ReceivedAt: meterTime.UTC(),
		MeterTime:  meterTime.UTC(),
		BootID:     "5f1c1a9e-7b0e-4c55-9a8e-3f0c2d1b4a77",
		Monotonic:  time.Duration(i) * time.Second,
	}
}

func mustEnqueue(t testing.TB, o *Outbox, r Record) uint64 {
	t.Helper()
	id, dup, err := o.Enqueue(r)
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	if dup {
		t.Fatalf("Enqueue %q: unexpected duplicate of %d", r.Identity, id)
	}
	return id
}

func mustGet(t testing.TB, o *Outbox, id uint64) Record {
	t.Helper()
	r, err := o.Get(id)
	if err != nil {
		t.Fatalf("Get(%d): %v", id, err)
	}
	return r
}

func mustStats(t testing.TB, o *Outbox) Stats {
	t.Helper()
	s, err := o.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return s
}

// listAll pages through List and returns every id in state.
func listAll(t testing.TB, o *Outbox, state State, page int) []uint64 {
	t.Helper()
	var ids []uint64
	var after uint64
	for {
		recs, next, err := o.List(state, after, page)
		if err != nil {
			t.Fatalf("List(%q, %d, %d): %v", state, after, page, err)
		}
		for _, r := range recs {
			ids = append(ids, r.ID)
		}
		if next == 0 {
			return ids
		}
		if next <= after {
			t.Fatalf("List cursor went back from %d to %d", after, next)
		}
		after = next
	}
}

func corruptFiles(t testing.TB, path string) []string {
	t.Helper()
	m, err := filepath.Glob(path + ".corrupt-*")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func wantErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
