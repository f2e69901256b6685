package badinput

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"taxi-agent/internal/outbox"
	"taxi-agent/internal/punch"
	"taxi-agent/internal/stamp"
	"taxi-agent/test/harness"
)

// TestOutboxFullUnderLoad runs the outbox as the daemon does once a full
// outbox can drain again: the meter stores events as fast as it is
// answered and re-sends every 75 ms when refused, while the uploader
// delivers the head every few milliseconds, and a reader polls the
// status. Deliveries and the pruning
// Enqueue does for room must keep working: a full outbox must never
// stop the uploader.
func TestOutboxFullUnderLoad(t *testing.T) {
	ob, err := outbox.Open(filepath.Join(t.TempDir(), "outbox.db"), outbox.Options{MaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	n := 0
	next := func() outbox.Record {
		n++
		now := time.Now()
		typ := punch.SignIn
		if n%2 == 0 {
			typ = punch.SignOut
		}
		return outbox.Record{
			Event: punch.Event{Type: typ, DriverLicense: harness.Licence(n / 2), PlateNumber: harness.Plate,
				RegionID: harness.RegionID, EventTime: stamp.Format(now)},
			Identity:   fmt.Sprintf("%s|%s|202611281030|%d", typ, harness.Licence(n/2), n/2),
			ReceivedAt: now, MeterTime: now.Truncate(time.Minute),
			BootID: "0f6b3c1e-8a51-4f0b-9d55-3a1c2b7e9a10", Monotonic: time.Duration(n) * time.Second,
		}
	}
	waiting := next()
	full := 0
	for {
		if _, _, err := ob.Enqueue(waiting); errors.Is(err, outbox.ErrFull) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		waiting = next()
		full++
	}

	var delivered atomic.Int64
	stop := make(chan struct{})
	failed := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			head, ok, err := ob.Head()
			if err == nil && ok {
				time.Sleep(4 * time.Millisecond) // the HTTPS exchange
				err = ob.MarkDelivered(head.ID, time.Now())
				if err != nil {
					err = fmt.Errorf("deliver record %d: %w", head.ID, err)
				}
			}
			if err != nil {
				failed <- err
				return
			}
			if ok {
				delivered.Add(1)
			} else {
				time.Sleep(time.Millisecond)
			}
		}
	})
	// A technician's status polling, or any reader: read transactions
	// come and go while the meter and the uploader write.
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := ob.Stats(); err != nil {
				return
			}
		}
	})
	defer wg.Wait()
	defer close(stop)

	// 1000 stores and as many deliveries, each a commit with an fsync,
	// took 40 s to over a minute on 2 loaded cores: the loop fails when
	// none has been stored for 15 s (the refusals are retried every
	// 75 ms, deliveries make room every few), not at a fixed deadline.
	const (
		want  = 1000
		stall = 15 * time.Second
	)
	stored, refused := 0, 0
	lastStored := time.Now()
	for stored < want {
		select {
		case err := <-failed:
			st, _ := ob.Stats()
			t.Fatalf("full at %d events; then %d stored, %d delivered, %d refused, and the uploader is stuck: %v\n%+v",
				full, stored, delivered.Load(), refused, err, st)
		default:
		}
		if time.Since(lastStored) > stall {
			t.Fatalf("full at %d events; then %d stored, %d delivered, %d refused, and none stored for %s",
				full, stored, delivered.Load(), refused, stall)
		}
		if _, _, err := ob.Enqueue(waiting); err == nil {
			stored++
			lastStored = time.Now()
			waiting = next()
		} else if errors.Is(err, outbox.ErrFull) {
			refused++
			time.Sleep(75 * time.Millisecond)
		} else {
			t.Fatal(err)
		}
	}
	t.Logf("full at %d events; then %d stored, %d delivered, %d refused", full, stored, delivered.Load(), refused)
}
