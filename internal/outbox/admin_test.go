package outbox

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"taxi-agent/internal/testsupport"
)

// mixed fills an outbox with 30 records: every third dead, every third
// delivered, the rest pending.
func mixed(t *testing.T) (*Outbox, *testsupport.Clock, map[State][]uint64) {
	t.Helper()
	o, clk := openTest(t, Options{})
	want := map[State][]uint64{}
	for i := range 30 {
		id := mustEnqueue(t, o, event(i))
		switch i % 3 {
		case 1:
			if err := o.DeadLetter(id, AttemptError{At: clk.Now(), Status: 400}, "bad"); err != nil {
				t.Fatal(err)
			}
			want[Dead] = append(want[Dead], id)
		case 2:
			if err := o.MarkDelivered(id, clk.Now()); err != nil {
				t.Fatal(err)
			}
			want[Delivered] = append(want[Delivered], id)
		default:
			want[Pending] = append(want[Pending], id)
		}
		want[""] = append(want[""], id)
	}
	return o, clk, want
}

func TestListPagesInOrder(t *testing.T) {
	o, _, want := mixed(t)
	for _, state := range []State{"", Pending, Dead, Delivered} {
		for _, page := range []int{1, 3, 7, 10, 100} {
			if got := listAll(t, o, state, page); !reflect.DeepEqual(got, want[state]) {
				t.Errorf("List(%q) in pages of %d: %v, want %v", state, page, got, want[state])
			}
		}
	}
	recs, next, err := o.List(Dead, 0, 4)
	if err != nil || len(recs) != 4 || next != recs[3].ID {
		t.Fatalf("first page of dead: %d records next %d err %v", len(recs), next, err)
	}
	for _, r := range recs {
		if r.State != Dead {
			t.Fatalf("List(dead) returned %+v", r)
		}
	}
	// A page that ends exactly at the last record reports no next page.
	recs, next, err = o.List(Pending, 0, len(want[Pending]))
	if err != nil || len(recs) != len(want[Pending]) || next != 0 {
		t.Fatalf("exact page: %d records next %d err %v", len(recs), next, err)
	}
	_, _, err = o.List("lost", 0, 10)
	wantErr(t, err, ErrBadState)
}

func TestListLimits(t *testing.T) {
	o, _ := openTest(t, Options{})
	for i := range DefaultListLimit + 5 {
		mustEnqueue(t, o, event(i))
	}
	recs, next, err := o.List("", 0, 0)
	if err != nil || len(recs) != DefaultListLimit || next != uint64(DefaultListLimit) {
		t.Fatalf("default limit: %d records next %d err %v", len(recs), next, err)
	}
	recs, _, err = o.List("", 0, MaxListLimit*10)
	if err != nil || len(recs) != DefaultListLimit+5 {
		t.Fatalf("large limit: %d records err %v", len(recs), err)
	}
}

func TestGet(t *testing.T) {
	o, _, want := mixed(t)
	for _, s := range allStates {
		for _, id := range want[s] {
			if r := mustGet(t, o, id); r.State != s || r.ID != id {
				t.Fatalf("Get(%d) = %d/%s, want %s", id, r.ID, r.State, s)
			}
		}
	}
	_, err := o.Get(1000)
	wantErr(t, err, ErrNotFound)
}

func TestRetryKeepsIDAndPlace(t *testing.T) {
	o, clk := openTest(t, Options{})
	for i := range 3 {
		mustEnqueue(t, o, event(i))
	}
	if err := o.DeadLetter(1, AttemptError{At: clk.Now(), Status: 400, Code: "PARAM_ERROR"}, "bad"); err != nil {
		t.Fatal(err)
	}
	if h, _, _ := o.Head(); h.ID != 2 {
		t.Fatalf("head %d, want 2", h.ID)
	}
	wantErr(t, o.Retry(2), ErrNotDead)
	wantErr(t, o.Retry(9), ErrNotFound)
	if err := o.Retry(1); err != nil {
		t.Fatal(err)
	}
	r := mustGet(t, o, 1)
	if r.State != Pending || r.Attempts != 0 || !r.NextAttempt.IsZero() || r.DeadReason != "" || !r.DeadAt.IsZero() || r.Requeued != 1 {
		t.Fatalf("retried record %+v", r)
	}
	if r.LastError == nil || r.LastError.Code != "PARAM_ERROR" {
		t.Fatalf("retry lost the last error: %+v", r.LastError)
	}
	if h, _, _ := o.Head(); h.ID != 1 {
		t.Fatalf("head %d after retry, want 1 (back in its place by id)", h.ID)
	}
	if s := mustStats(t, o); s.Pending != 3 || s.Dead != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestRetryAllDead(t *testing.T) {
	o, _, want := mixed(t)
	n, err := o.RetryAllDead()
	if err != nil || n != len(want[Dead]) {
		t.Fatalf("RetryAllDead = %d %v, want %d", n, err, len(want[Dead]))
	}
	if got := listAll(t, o, Dead, 10); len(got) != 0 {
		t.Fatalf("dead after retry all: %v", got)
	}
	if got := listAll(t, o, Pending, 10); len(got) != len(want[Pending])+len(want[Dead]) {
		t.Fatalf("pending after retry all: %v", got)
	}
	if n, err := o.RetryAllDead(); n != 0 || err != nil {
		t.Fatalf("second RetryAllDead = %d %v", n, err)
	}
}

func TestPurge(t *testing.T) {
	o, _, want := mixed(t)
	wantErr(t, o.Purge(want[Pending][0]), ErrNotDead)
	wantErr(t, o.Purge(want[Delivered][0]), ErrNotDead)
	wantErr(t, o.Purge(999), ErrNotFound)
	dead := want[Dead][0]
	if err := o.Purge(dead); err != nil {
		t.Fatal(err)
	}
	_, err := o.Get(dead)
	wantErr(t, err, ErrNotFound)
	// Its identity is forgotten: the same frame is stored anew.
	id, dup, err := o.Enqueue(event(int(dead - 1)))
	if err != nil || dup || id == dead {
		t.Fatalf("re-sent purged frame: %d %v %v", id, dup, err)
	}
	n, err := o.PurgeAllDead()
	if err != nil || n != len(want[Dead])-1 {
		t.Fatalf("PurgeAllDead = %d %v, want %d", n, err, len(want[Dead])-1)
	}
	s := mustStats(t, o)
	if s.Dead != 0 || s.Pending != uint64(len(want[Pending])+1) || s.Delivered != uint64(len(want[Delivered])) {
		t.Fatalf("stats %+v", s)
	}
}

func TestBatchesCrossTransactions(t *testing.T) {
	o, _ := openTest(t, Options{})
	n := deleteBatch*2 + 3
	for i := range n {
		id := mustEnqueue(t, o, event(i))
		if err := o.DeadLetter(id, AttemptError{}, "bad"); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := o.RetryAllDead(); err != nil || got != n {
		t.Fatalf("RetryAllDead = %d %v, want %d", got, err, n)
	}
	for {
		r, ok, err := o.Head()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if err := o.DeadLetter(r.ID, AttemptError{}, "bad"); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := o.PurgeAllDead(); err != nil || got != n {
		t.Fatalf("PurgeAllDead = %d %v, want %d", got, err, n)
	}
}

func TestExport(t *testing.T) {
	o, _, want := mixed(t)
	var got []uint64
	if err := o.Export(func(r Record) error { got = append(got, r.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want[""]) {
		t.Fatalf("export %v, want %v", got, want[""])
	}
	stop := errors.New("socket closed")
	n := 0
	err := o.Export(func(Record) error {
		if n++; n == 5 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 5 {
		t.Fatalf("export stopped after %d with %v, want 5 and %v", n, err, stop)
	}
}

func TestExportManyPages(t *testing.T) {
	o, _ := openTest(t, Options{})
	total := exportPage*2 + 1
	for i := range total {
		mustEnqueue(t, o, event(i))
	}
	next := uint64(1)
	err := o.Export(func(r Record) error {
		if r.ID != next {
			t.Fatalf("export gave %d, want %d", r.ID, next)
		}
		next++
		return nil
	})
	if err != nil || next != uint64(total+1) {
		t.Fatalf("export ended at %d err %v, want %d records", next-1, err, total)
	}
}

func TestStats(t *testing.T) {
	o, clk := openTest(t, Options{})
	s := mustStats(t, o)
	if s.Pending != 0 || s.OldestPendingAgeSeconds != 0 || !s.OldestPending.IsZero() || s.FileSize == 0 || s.MaxSize != DefaultMaxSize {
		t.Fatalf("empty stats %+v", s)
	}
	r := event(0)
	r.ReceivedAt = clk.Now()
	mustEnqueue(t, o, r)
	mustEnqueue(t, o, event(1))
	clk.Advance(90 * time.Second)
	s = mustStats(t, o)
	if s.Pending != 2 || !s.OldestPending.Equal(r.ReceivedAt) || s.OldestPendingAge != 90*time.Second || s.OldestPendingAgeSeconds != 90 {
		t.Fatalf("stats %+v", s)
	}
	// Quarantined files next to the db are counted; others are not.
	dir := filepath.Dir(o.Path())
	for _, name := range []string{"outbox.db.corrupt-20261128T000000Z", "outbox.db.corrupt-20261129T000000Z", "other.db.corrupt-x", "outbox.db.bak"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if s = mustStats(t, o); s.CorruptFiles != 2 {
		t.Fatalf("corrupt files %d, want 2", s.CorruptFiles)
	}
}

func TestClosed(t *testing.T) {
	o, clk := openTest(t, Options{})
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_, _, err := o.Enqueue(event(0))
	wantErr(t, err, ErrClosed)
	_, _, err = o.Head()
	wantErr(t, err, ErrClosed)
	wantErr(t, o.MarkDelivered(1, clk.Now()), ErrClosed)
	_, err = o.Stats()
	wantErr(t, err, ErrClosed)
	_, _, err = o.List("", 0, 1)
	wantErr(t, err, ErrClosed)
}
