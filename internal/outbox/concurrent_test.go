package outbox

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
)

// TestConcurrentUse runs the meter, the uploader and a technician at once
// (under -race in CI) and checks that every event was stored once, in a
// consistent order, and delivered in id order.
func TestConcurrentUse(t *testing.T) {
	o, clk := openTest(t, Options{})
	const writers, perWriter = 3, 40
	var wg sync.WaitGroup
	stored := make(chan uint64, writers*perWriter)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				r := event(i)
				r.Identity = fmt.Sprintf("w%d|%d", w, i)
				id, dup, err := o.Enqueue(r)
				if err != nil || dup {
					t.Errorf("Enqueue: %v dup %v", err, dup)
					return
				}
				// The meter re-sends: still one record.
				if again, dup, err := o.Enqueue(r); err != nil || !dup || again != id {
					t.Errorf("re-send of %d: %d %v %v", id, again, dup, err)
				}
				stored <- id
			}
		})
	}
	done := make(chan struct{})
	var delivered []uint64
	var deliverer sync.WaitGroup
	deliverer.Go(func() {
		for {
			r, ok, err := o.Head()
			if err != nil {
				t.Error(err)
				return
			}
			if !ok {
				select {
				case <-done:
					return
				default:
					runtime.Gosched()
					continue
				}
			}
			if err := o.MarkDelivered(r.ID, clk.Now()); err != nil {
				t.Error(err)
				return
			}
			delivered = append(delivered, r.ID)
		}
	})
	wg.Go(func() {
		for range 20 {
			if _, _, err := o.List("", 0, 50); err != nil {
				t.Error(err)
			}
			if _, err := o.Stats(); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	close(done)
	deliverer.Wait()
	close(stored)

	seen := map[uint64]bool{}
	for id := range stored {
		if seen[id] {
			t.Fatalf("id %d handed out twice", id)
		}
		seen[id] = true
	}
	if len(delivered) != writers*perWriter {
		t.Fatalf("delivered %d of %d", len(delivered), writers*perWriter)
	}
	for i := 1; i < len(delivered); i++ {
		if delivered[i] <= delivered[i-1] {
			t.Fatalf("delivered out of order: %d after %d", delivered[i], delivered[i-1])
		}
	}
	if s := mustStats(t, o); s.Delivered != uint64(writers*perWriter) || s.Pending != 0 {
		t.Fatalf("stats %+v", s)
	}
}
