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
	seq        uint64 // order of holding, from 1 in each run
}

// heldQueue keeps sign-ins whose store failed, in arrival order, and
// stores them as soon as the outbox accepts. A meter does not re-send a
// sign-in, so memory is its only copy until then. Every store goes
// through the queue's lock, so nothing that arrived later is stored ahead
// of a held event. Each held event is also handed to the spill file, so
// that a stop, a kill or a power cut before the store does not lose it.
type heldQueue struct {
	store func(outbox.Record, string) (uint64, bool, error)
	log   *slog.Logger
	wake  chan struct{}
	spill *spill

	mu      sync.Mutex
	events  []heldEvent
	lastErr error
	nextSeq uint64

	// snapshot is what status reports, published under mu after every
	// change: status must answer while a store holds mu, stuck in the
	// kernel.
	snapshot atomic.Pointer[heldSnapshot]
}

// heldSnapshot is the queue as status last saw it; the held events carry
// the seqs firstSeq, firstSeq+1, ….
type heldSnapshot struct {
	admin.HeldStatus
	firstSeq uint64
}

// newHeldQueue returns a queue storing with store and spilling to
// spillPath. The events an earlier run left in the spill file are put back
// at its head, in their order; the caller then flushes them.
func newHeldQueue(store func(outbox.Record, string) (uint64, bool, error), spillPath string, log *slog.Logger) (*heldQueue, error) {
	q := &heldQueue{store: store, log: log, wake: make(chan struct{}, 1), spill: newSpill(spillPath, log)}
	events, err := q.spill.load()
	if err != nil {
		return nil, err
	}
	q.events = events
	q.nextSeq = uint64(len(events)) + 1
	if len(events) > 0 {
		q.log.Warn("held events recovered from the spill file; stored ahead of new events",
			"spill_file", spillPath, "held", len(events))
	}
	q.mu.Lock()
	q.publishLocked()
	q.mu.Unlock()
	return q, nil
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
	h := heldEvent{rec: rec, deadReason: deadReason, arrived: time.Now(), seq: q.nextSeq}
	q.nextSeq++
	q.events = append(q.events, h)
	q.spill.add(h)
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
		if len(q.events) == 0 {
			q.spill.markEmptied()
		}
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
	spillDone := make(chan struct{})
	go func() { q.spill.run(ctx.Done()); close(spillDone) }()
	defer func() { <-spillDone }()
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
	snap := q.snapshot.Load()
	if snap == nil {
		return admin.HeldStatus{}
	}
	st := snap.HeldStatus
	sp := q.spill.state()
	st.SpillFile = q.spill.path
	if sp.err != nil {
		st.SpillError = sp.err.Error()
	}
	if st.Count > 0 && sp.written >= snap.firstSeq {
		st.OnDisk = min(st.Count, int(sp.written-snap.firstSeq+1))
	}
	return st
}

// publishLocked takes the snapshot status reports.
func (q *heldQueue) publishLocked() {
	snap := heldSnapshot{HeldStatus: admin.HeldStatus{Count: len(q.events)}}
	if len(q.events) > 0 {
		snap.Oldest = q.events[0].arrived
		snap.firstSeq = q.events[0].seq
		if q.lastErr != nil {
			snap.Reason = q.lastErr.Error()
		}
	}
	q.snapshot.Store(&snap)
}

// drain makes a last attempt at shutdown, after run has returned, and
// brings the spill file up to date. It logs whatever is still held: from
// the spill file the next start stores it, unless the file could not be
// written, and then it is lost with this process.
func (q *heldQueue) drain() {
	q.flush()
	spillErr := q.spill.sync()
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, h := range q.events {
		log := q.log.Warn
		msg := "stopping with an event the outbox never accepted; it is kept in the spill file and stored at the next start"
		if spillErr != nil {
			log = q.log.Error
			msg = "stopping with an event the outbox never accepted and the spill file could not keep; it is lost with this process"
		}
		log(msg, "event_type", h.rec.Event.Type, "driver_license", redact.LicenceValue(h.rec.Event.DriverLicense),
			"identity", h.rec.Identity, "event_time", h.rec.Event.EventTime, "spill_file", q.spill.path,
			"err", q.lastErr, "spill_err", spillErr)
	}
}
