package outbox

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"taxi-agent/internal/punch"
)

// roomRecord is a record whose identity is size bytes long; records up
// to about 2 kB still fit a 4 KiB page.
func roomRecord(i, size int) Record {
	id := fmt.Sprintf("|SIGN_IN|11010519491231002X|%d", i)
	pad := strings.Repeat("p", max(size-len(id)-1, 0))
	return Record{
		Event:    punch.Event{Type: punch.SignIn, DriverLicense: "11010519491231002X", PlateNumber: "粤B12345", RegionID: 440300},
		Identity: string(rune('A'+i%26)) + pad + id,
		BootID:   "boot-1", Monotonic: time.Minute, ReceivedAt: time.Unix(60, 0),
	}
}

// TestFullOutboxDrains fills a 1 MiB outbox with records of mixed sizes
// to refusal, then delivers every record one by one, prunes them and
// fills it again, several times: at the bound, every delivery and every
// prune must find room, and the drained outbox must take new events.
func TestFullOutboxDrains(t *testing.T) {
	const maxSize = 1 << 20
	o, clk := openTest(t, Options{MaxSize: maxSize})
	rng := rand.New(rand.NewPCG(7, 11))
	next := 0
	for round := range 6 {
		var ids []uint64
		big := false // in even rounds: a record of 2 kB was refused
		for refusals := 0; refusals < 5; {
			if next > 100000 {
				t.Fatalf("round %d: no ErrFull", round)
			}
			size := 40 + rng.IntN(2000)
			switch {
			case round%2 == 0 && !big:
				size = 2040 // the largest first, as the daemon's test fills
			case rng.IntN(3) == 0:
				size = 40
			}
			id, dup, err := o.Enqueue(roomRecord(next, size))
			next++
			switch {
			case errors.Is(err, ErrFull) && round%2 == 0 && !big:
				big = true
			case errors.Is(err, ErrFull):
				refusals++
			case err != nil:
				t.Fatalf("round %d: enqueue: %v", round, err)
			case dup:
				t.Fatalf("round %d: record %d reported duplicate", round, next-1)
			default:
				ids = append(ids, id)
				refusals = 0
			}
		}
		if round > 0 && len(ids) == 0 {
			t.Fatalf("round %d: the drained outbox took no record", round)
		}
		t.Logf("round %d: %d records before refusal", round, len(ids))
		// Everything pending (this round's and any kept from before) is
		// delivered one by one; in the last mode an enqueue follows each
		// delivery, which prunes the delivered records for room.
		for _, id := range append(listAll(t, o, Pending, 100), 0) {
			if id == 0 {
				// The records enqueued while draining, without more.
				for _, id := range listAll(t, o, Pending, 100) {
					if err := o.MarkDelivered(id, clk.Now()); err != nil {
						t.Fatalf("round %d: deliver %d: %v", round, id, err)
					}
				}
				break
			}
			clk.Advance(time.Second)
			if err := o.MarkDelivered(id, clk.Now()); err != nil {
				t.Fatalf("round %d: deliver %d of a full outbox: %v", round, id, err)
			}
			if round%3 == 2 {
				_, _, err := o.Enqueue(roomRecord(next, 40+rng.IntN(2000)))
				next++
				if err != nil && !errors.Is(err, ErrFull) {
					t.Fatalf("round %d: enqueue while draining: %v", round, err)
				}
			}
		}
		if round%3 == 1 {
			// Prune by retention, in the uploader's place.
			clk.Advance(o.opts.Retention + time.Hour)
			n, err := o.Prune(clk.Now())
			if err != nil {
				t.Fatalf("round %d: prune of a full outbox: %v", round, err)
			}
			if n == 0 {
				t.Fatalf("round %d: prune deleted nothing", round)
			}
		}
		// Otherwise Enqueue prunes for room on its own.
		if size := fileSize(t, o.Path()); size > maxSize {
			t.Fatalf("file grew to %d bytes, past MaxSize %d", size, maxSize)
		}
	}
}
