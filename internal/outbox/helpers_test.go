package outbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"taxi-agent/internal/punch"
)

// testClock is an injectable clock that only moves when told.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *testClock {
	return &testClock{t: time.Date(2026, 11, 28, 2, 30, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// openTest opens an outbox in a fresh temporary directory with the clock
// and closes it at the end of the test.
func openTest(t testing.TB, opts Options) (*Outbox, *testClock) {
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
	t.Cleanup(func() { _ = o.Close() })
	return o
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
