package daemon

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"taxi-agent/internal/admin"
	"taxi-agent/internal/outbox"
	"taxi-agent/internal/redact"
)

// Retry bounds of the held queue: how soon, and at most how long after, a
// failed store is tried again.
const (
	heldRetryMin = 500 * time.Millisecond
	heldRetryMax = 10 * time.Second
)

// errHeld says an event is kept in memory, not yet durable.
var errHeld = errors.New("kept in memory until the outbox accepts it")

// heldEvent is an event that could not be stored when it arrived.
type heldEvent struct {
	rec        outbox.Record
	deadReason string // stored dead with this reason, if set
	arrived    time.Time
}

// heldQueue keeps sign-ins whose store failed, in arrival order, and
// stores them as soon as the outbox accepts. A meter does not re-send a
// sign-in, so memory is its only copy until then. Every store goes
// through the queue's lock, so nothing that arrived later is stored ahead
// of a held event.
type heldQueue struct {
	store func(outbox.Record, string) (uint64, bool, error)
	log   *slog.Logger
	wake  chan struct{}

	mu      sync.Mutex
	events  []heldEvent
	lastErr error

	// snapshot is what status reports, published under mu after every
	// change: status must answer while a store holds mu, stuck in the
	// kernel.
	snapshot atomic.Pointer[admin.HeldStatus]
}

func newHeldQueue(store func(outbox.Record, string) (uint64, bool, error), log *slog.Logger) *heldQueue {
	return &heldQueue{store: store, log: log, wake: make(chan struct{}, 1)}
}

// storeInOrder stores rec after every held event. With keep set (a
// sign-in), a failure keeps rec in memory and returns an error wrapping
// errHeld; otherwise (a sign-out, which the meter re-sends) rec is not
// kept. It returns the store's id and duplicate flag on success.
func (q *heldQueue) storeInOrder(rec outbox.Record, deadReason string, keep bool) (id uint64, dup bool, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	defer q.publishLocked()
	if q.flushLocked() == nil {
		var serr error
		if id, dup, serr = q.store(rec, deadReason); serr == nil {
			return id, dup, nil
		}
		q.lastErr = serr
	}
	if !keep {
		return 0, false, q.lastErr
	}
	for _, h := range q.events {
		if h.rec.Identity != "" && h.rec.Identity == rec.Identity {
			return 0, false, errors.Join(errHeld, q.lastErr) // a legacy meter's re-send of a held sign-in
		}
	}
	q.events = append(q.events, heldEvent{rec: rec, deadReason: deadReason, arrived: time.Now()})
	q.log.Error("event could not be stored; kept in memory and stored as soon as the outbox accepts",
		"event_type", rec.Event.Type, "driver_license", redact.LicenceValue(rec.Event.DriverLicense),
		"held", len(q.events), "err", q.lastErr)
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return 0, false, errors.Join(errHeld, q.lastErr)
}

// flushLocked stores held events in order until one fails.
func (q *heldQueue) flushLocked() error {
	for len(q.events) > 0 {
		h := q.events[0]
		id, dup, err := q.store(h.rec, h.deadReason)
		if err != nil {
			q.lastErr = err
			return err
		}
		q.events = q.events[1:]
		q.log.Info("held event stored", "id", id, "duplicate", dup, "event_type", h.rec.Event.Type,
			"driver_license", redact.LicenceValue(h.rec.Event.DriverLicense), "held_for", time.Since(h.arrived).Round(time.Millisecond),
			"still_held", len(q.events))
	}
	return nil
}

// flush stores what it can now; it reports whether the queue is empty.
func (q *heldQueue) flush() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	defer q.publishLocked()
	return q.flushLocked() == nil
}

// run retries the store with capped backoff while events are held, until
// ctx ends. stored is called after events were stored.
func (q *heldQueue) run(ctx context.Context, stored func()) {
	wait := heldRetryMin
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for {
		q.mu.Lock()
		n := len(q.events)
		q.mu.Unlock()
		if n > 0 {
			t.Reset(wait)
		} else {
			t.Stop()
			wait = heldRetryMin
		}
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		case <-t.C:
			if q.flush() {
				stored()
				wait = heldRetryMin
			} else {
				wait = min(2*wait, heldRetryMax)
			}
		}
	}
}

// status reports the queue for `agent status`, from the last snapshot:
// it never waits for a store in flight.
func (q *heldQueue) status() admin.HeldStatus {
	if st := q.snapshot.Load(); st != nil {
		return *st
	}
	return admin.HeldStatus{}
}

// publishLocked takes the snapshot status reports.
func (q *heldQueue) publishLocked() {
	st := admin.HeldStatus{Count: len(q.events)}
	if len(q.events) > 0 {
		st.Oldest = q.events[0].arrived
		if q.lastErr != nil {
			st.Reason = q.lastErr.Error()
		}
	}
	q.snapshot.Store(&st)
}

// drain makes a last attempt at shutdown and logs, loudly, whatever is
// still held: the process is about to lose it.
func (q *heldQueue) drain() {
	if q.flush() {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, h := range q.events {
		q.log.Error("stopping with an event the outbox never accepted; it is lost with this process",
			"event_type", h.rec.Event.Type, "driver_license", redact.LicenceValue(h.rec.Event.DriverLicense),
			"identity", h.rec.Identity, "event_time", h.rec.Event.EventTime, "err", q.lastErr)
	}
}
