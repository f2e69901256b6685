package badinput

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"taxi-agent/internal/outbox"
	"taxi-agent/internal/punch"
	"taxi-agent/internal/stamp"
	"taxi-agent/test/harness"
)

// TestOutboxRoomAfterDrain checks, in-process and on the smallest outbox a
// config allows (1 MiB), what the agent relies on when the outbox is full:
// once the uploader has delivered the backlog there is room again, because
// Enqueue prunes delivered records for it. It delivers the backlog the way
// the daemon does while a meter keeps re-sending: one delivery, one
// enqueue attempt.
func TestOutboxRoomAfterDrain(t *testing.T) {
	// The meter re-sends every few hundred milliseconds while the
	// uploader delivers a punch every few: how many deliveries fall
	// between two enqueue attempts varies.
	for _, every := range []int{1, 20, 64} {
		t.Run(fmt.Sprintf("enqueue every %d deliveries", every), func(t *testing.T) { roomAfterDrain(t, every) })
	}
}

func roomAfterDrain(t *testing.T, every int) {
	ob, err := outbox.Open(filepath.Join(t.TempDir(), "outbox.db"), outbox.Options{MaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	n := 0
	next := func() outbox.Record {
		n++
		now := time.Now()
		return outbox.Record{
			Event: punch.Event{Type: punch.SignIn, DriverLicense: harness.Licence(n), PlateNumber: harness.Plate,
				RegionID: harness.RegionID, EventTime: stamp.Format(now)},
			Identity:   fmt.Sprintf("SIGN_IN|%s|202611281030|%d", harness.Licence(n), n),
			ReceivedAt: now, MeterTime: now.Truncate(time.Minute),
		}
	}
	for {
		if _, _, err := ob.Enqueue(next()); errors.Is(err, outbox.ErrFull) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	full := n - 1
	t.Logf("full after %d events", full)

	waiting := next() // the event the meter keeps re-sending
	delivered := 0
	for {
		head, ok, err := ob.Head()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if err := ob.MarkDelivered(head.ID, time.Now()); err != nil {
			t.Fatalf("deliver record %d after %d deliveries: %v", head.ID, delivered, err)
		}
		delivered++
		if delivered%every != 0 {
			continue
		}
		if _, _, err := ob.Enqueue(waiting); err == nil {
			t.Logf("room again after %d of %d deliveries", delivered, full)
			return
		} else if !errors.Is(err, outbox.ErrFull) {
			t.Fatal(err)
		}
	}
	st, _ := ob.Stats()
	t.Fatalf("all %d records delivered and the outbox is still full: %+v", delivered, st)
}
