package outbox

import (
	"fmt"
	"testing"
)

// fill enqueues new events until Enqueue reports ErrFull and returns the
// ids it stored.
func fill(t *testing.T, o *Outbox, from int) []uint64 {
	t.Helper()
	var ids []uint64
	for i := from; ; i++ {
		if i-from > 100000 {
			t.Fatalf("no ErrFull after %d events", i-from)
		}
		id, dup, err := o.Enqueue(event(i))
		if err != nil {
			wantErr(t, err, ErrFull)
			return ids
		}
		if dup {
			t.Fatalf("event %d reported duplicate", i)
		}
		ids = append(ids, id)
	}
}

func TestSizeBound(t *testing.T) {
	const maxSize = MinMaxSize
	o, clk := openTest(t, Options{MaxSize: maxSize})
	first := fill(t, o, 0)
	if len(first) < 50 {
		t.Fatalf("only %d events fit in %d bytes", len(first), maxSize)
	}
	t.Logf("%d events fit in %d bytes before ErrFull", len(first), maxSize)
	if s := mustStats(t, o); !s.Full || s.Pending != uint64(len(first)) {
		t.Fatalf("stats when full %+v", s)
	}
	// Still full on retry; nothing stored was dropped.
	_, _, err := o.Enqueue(event(1_000_000))
	wantErr(t, err, ErrFull)
	if got := listAll(t, o, Pending, 37); fmt.Sprint(got) != fmt.Sprint(first) {
		t.Fatalf("pending after ErrFull %v, want %v", got, first)
	}
	// A duplicate needs no room and is still answered.
	if id, dup, err := o.Enqueue(event(0)); err != nil || !dup || id != first[0] {
		t.Fatalf("duplicate when full: %d %v %v", id, dup, err)
	}

	// The uploader can still drain a full outbox: every delivery and
	// dead-letter needs fresh pages, taken from the reserve.
	for i, id := range first {
		var err error
		switch i % 10 {
		case 9:
			err = o.DeadLetter(id, AttemptError{At: clk.Now(), Status: 400}, "bad")
		case 8:
			if err = o.RecordFailure(id, AttemptError{At: clk.Now(), Status: 503}, clk.Now()); err == nil {
				err = o.MarkDelivered(id, clk.Now())
			}
		default:
			err = o.MarkDelivered(id, clk.Now())
		}
		if err != nil {
			t.Fatalf("draining %d of a full outbox: %v", id, err)
		}
	}
	if size := fileSize(t, o.Path()); size > maxSize {
		t.Fatalf("file grew to %d bytes, past MaxSize %d", size, maxSize)
	}

	// Enqueue prunes delivered records (within retention) to make room.
	second := fill(t, o, 10_000)
	if len(second) < len(first)/2 {
		t.Fatalf("after delivering, only %d events fit", len(second))
	}
	s := mustStats(t, o)
	if s.Pending != uint64(len(second)) || s.Dead != uint64(len(first)/10) {
		t.Fatalf("stats %+v: want %d pending and the %d dead kept", s, len(second), len(first)/10)
	}
	if got := listAll(t, o, Pending, 50); fmt.Sprint(got) != fmt.Sprint(second) {
		t.Fatalf("pending %v, want %v", got, second)
	}
	if got := listAll(t, o, Dead, 50); uint64(len(got)) != s.Dead {
		t.Fatalf("dead records lost: %v", got)
	}

	// Delivering and pruning makes room again.
	for _, id := range second {
		if err := o.MarkDelivered(id, clk.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := o.PurgeAllDead(); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Prune(clk.Now().Add(DefaultRetention)); err != nil {
		t.Fatal(err)
	}
	mustEnqueue(t, o, event(50_000))
	if s := mustStats(t, o); s.Full || s.Pending != 1 || s.Delivered != 0 {
		t.Fatalf("stats after prune %+v", s)
	}
	if size := fileSize(t, o.Path()); size > maxSize {
		t.Fatalf("file grew to %d bytes, past MaxSize %d", size, maxSize)
	}
}

func TestBoltFits(t *testing.T) {
	for _, c := range []struct {
		sz, maxSize, alloc int
		want               bool
	}{
		{100 << 10, 256 << 10, 1 << 20, true},  // next file size 128 KiB
		{129 << 10, 256 << 10, 1 << 20, true},  // 256 KiB
		{257 << 10, 256 << 10, 1 << 20, false}, // 512 KiB
		{200 << 10, 300 << 10, 1 << 20, true},  // 256 KiB
		{257 << 10, 300 << 10, 1 << 20, false}, // 512 KiB: a MaxSize that is no power of two is rounded down
		{2 << 20, 64 << 20, 1 << 20, true},     // 2 MiB + 1 MiB
		{63 << 20, 64 << 20, 1 << 20, true},
		{63<<20 + 1, 64 << 20, 1 << 20, false},
		{40 << 20, 64 << 20, 16 << 20, true},
		{49 << 20, 64 << 20, 16 << 20, false}, // bbolt's default AllocSize would stop at 48 MiB
	} {
		if got := boltFits(c.sz, c.maxSize, c.alloc); got != c.want {
			t.Errorf("boltFits(%d, %d, %d) = %v, want %v", c.sz, c.maxSize, c.alloc, got, c.want)
		}
	}
}
