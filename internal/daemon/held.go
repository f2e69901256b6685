package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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

// DefaultStoreWait is how long the meter link waits for an event's store
// before it answers (a sign-out 0xFF) and reads on: about what a meter
// waits for an answer. A healthy commit takes milliseconds, a slow flash
// card hundreds.
const DefaultStoreWait = 2 * time.Second

// errHeld says an event is kept in memory, not yet durable.
var errHeld = errors.New("kept in memory until the outbox accepts it")

// heldEvent is an event on its way to the outbox.
type heldEvent struct {
	rec        outbox.Record
	deadReason string // stored dead with this reason, if set
	arrived    time.Time
	seq        uint64 // order of holding, from 1 in each run; 0 until held

	keep   bool             // a sign-in: kept until stored
	held   bool             // a kept event not stored in time: spilled, in status
	gaveUp bool             // a sign-out its caller no longer waits for: skipped
	done   chan storeResult // for the caller: that it is held, then the store's outcome
}

func newHeldEvent(rec outbox.Record, deadReason string, arrived time.Time, keep bool) *heldEvent {
	return &heldEvent{rec: rec, deadReason: deadReason, arrived: arrived, keep: keep, done: make(chan storeResult, 2)}
}

type storeResult struct {
	id  uint64
	dup bool
	err error
}

// heldQueue stores the meter's events in arrival order, one at a time, in
// its own goroutine, so that the meter link never waits on the outbox for
// longer than the store wait: a commit stuck in the kernel must not stop
// the link from reading, or the frames the meter sends meanwhile die with
// the process when the watchdog restarts it.
//
// A sign-in (keep) whose store fails or outlasts the wait is held: it
// stays at its place in the queue, is handed to the spill files so that a
// stop, a kill or a power cut does not lose it (a meter does not re-send a
// sign-in), and is stored as soon as the outbox accepts. A sign-out is
// never held: when its store fails, or it would have to overtake a held
// event, or its caller stops waiting, it is dropped and the meter, answered
// 0xFF, sends it again.
type heldQueue struct {
	store  func(outbox.Record, string) (uint64, bool, error)
	log    *slog.Logger
	wait   time.Duration
	kick   chan struct{}
	spills []*spill // the one beside the outbox first

	storing sync.Mutex // one store at a time, in order

	mu      sync.Mutex
	events  []*heldEvent // arrival order; events[0] may be in a store
	lastErr error
	nextSeq uint64

	// snapshot is what status reports, published under mu after every
	// change: status must answer while a store is stuck in the kernel.
	snapshot atomic.Pointer[heldSnapshot]
}

// heldSnapshot is the queue as status last saw it; the held events carry
// the seqs firstSeq, firstSeq+1, ….
type heldSnapshot struct {
	admin.HeldStatus
	firstSeq uint64
}

// newHeldQueue returns a queue storing with store, waiting at most wait
// for a store, and spilling held events to each of spillPaths. The events
// earlier runs left in the spill files are put at its head, in arrival
// order, once each; the caller then flushes them.
func newHeldQueue(store func(outbox.Record, string) (uint64, bool, error), wait time.Duration, log *slog.Logger, spillPaths ...string) (*heldQueue, error) {
	q := &heldQueue{store: store, log: log, wait: wait, kick: make(chan struct{}, 1)}
	var recovered []heldEvent
	for _, p := range spillPaths {
		s := newSpill(p, log)
		events, err := s.load()
		if err != nil {
			return nil, err
		}
		if len(events) > 0 {
			q.log.Warn("held events recovered from a spill file; stored ahead of new events", "spill_file", p, "held", len(events))
		}
		recovered = append(recovered, events...)
		q.spills = append(q.spills, s)
	}
	recovered = mergeRecovered(recovered)
	for i, r := range recovered {
		h := newHeldEvent(r.rec, r.deadReason, r.arrived, true)
		h.seq, h.held = uint64(i+1), true
		recovered[i].seq = h.seq
		q.events = append(q.events, h)
	}
	if len(q.spills) > 1 && len(recovered) > 0 {
		for _, s := range q.spills {
			s.adopt(recovered)
		}
	}
	q.nextSeq = uint64(len(recovered)) + 1
	q.mu.Lock()
	q.publishLocked()
	q.mu.Unlock()
	return q, nil
}

// mergeRecovered orders events from several spill files by arrival and
// keeps one of each identity (every spill file may hold the same event).
func mergeRecovered(events []heldEvent) []heldEvent {
	slices.SortStableFunc(events, func(a, b heldEvent) int { return a.arrived.Compare(b.arrived) })
	type key struct {
		identity string
		arrived  int64
	}
	seen := make(map[key]bool, len(events))
	return slices.DeleteFunc(events, func(h heldEvent) bool {
		k := key{h.rec.Identity, h.arrived.UnixNano()}
		dup := seen[k]
		seen[k] = true
		return dup
	})
}

// submit stores rec after every event that came before it and returns the
// store's id and duplicate flag, waiting at most the store wait. With keep
// set (a sign-in), an event not stored in that time is held and the error
// wraps errHeld; otherwise (a sign-out, which the meter re-sends) it is
// dropped and the error says why.
func (q *heldQueue) submit(rec outbox.Record, deadReason string, keep bool) (id uint64, dup bool, err error) {
	h := newHeldEvent(rec, deadReason, time.Now(), keep)
	q.mu.Lock()
	if keep {
		for _, o := range q.events {
			if o.keep && o.rec.Identity != "" && o.rec.Identity == rec.Identity {
				q.mu.Unlock()
				return 0, false, fmt.Errorf("%w: a re-send of an event not yet stored", errHeld)
			}
		}
	}
	q.events = append(q.events, h)
	q.mu.Unlock()
	q.wakeStorer()

	t := time.NewTimer(q.wait)
	defer t.Stop()
	select {
	case r := <-h.done:
		return r.id, r.dup, r.err
	case <-t.C:
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	defer q.publishLocked()
	select {
	case r := <-h.done:
		return r.id, r.dup, r.err
	default:
	}
	slow := fmt.Errorf("the outbox has not answered within %s: storage is slow or stuck", q.wait)
	if !keep {
		h.gaveUp = true
		return 0, false, slow
	}
	if q.lastErr == nil {
		q.lastErr = slow
	}
	q.holdLocked(h)
	return 0, false, errors.Join(errHeld, q.lastErr)
}

func (q *heldQueue) wakeStorer() {
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// holdLocked makes h a held event: numbered, spilled, logged, and its
// caller told.
func (q *heldQueue) holdLocked(h *heldEvent) {
	if h.held {
		return
	}
	h.held, h.seq = true, q.nextSeq
	q.nextSeq++
	h.done <- storeResult{err: errors.Join(errHeld, q.lastErr)}
	for _, s := range q.spills {
		s.add(*h)
	}
	q.log.Error("event could not be stored; kept in memory and stored as soon as the outbox accepts",
		"event_type", h.rec.Event.Type, "driver_license", redact.LicenceValue(h.rec.Event.DriverLicense),
		"held", q.heldLocked(), "err", q.lastErr)
}

// heldLocked counts the held events.
func (q *heldQueue) heldLocked() int {
	n := 0
	for _, h := range q.events {
		if h.held {
			n++
		}
	}
	return n
}

// step stores the queue's first event that someone still waits for. It
// reports whether there was one, and the store's error if that event is
// now held (a failed sign-out is only dropped and reported to its caller).
func (q *heldQueue) step() (worked bool, err error) {
	q.storing.Lock()
	defer q.storing.Unlock()
	q.mu.Lock()
	for len(q.events) > 0 && q.events[0].gaveUp {
		q.events = q.events[1:]
	}
	if len(q.events) == 0 {
		q.mu.Unlock()
		return false, nil
	}
	h := q.events[0]
	q.mu.Unlock()

	id, dup, err := q.store(h.rec, h.deadReason)

	q.mu.Lock()
	defer q.mu.Unlock()
	defer q.publishLocked()
	if err == nil {
		q.events = q.events[1:]
		q.lastErr = nil
		h.done <- storeResult{id: id, dup: dup}
		if h.held {
			if q.heldLocked() == 0 {
				for _, s := range q.spills {
					s.markEmptied()
				}
			}
			q.log.Info("held event stored", "id", id, "duplicate", dup, "event_type", h.rec.Event.Type,
				"driver_license", redact.LicenceValue(h.rec.Event.DriverLicense), "held_for", time.Since(h.arrived).Round(time.Millisecond),
				"still_held", q.heldLocked())
		}
		return true, nil
	}
	q.lastErr = err
	if !h.keep {
		q.events = q.events[1:]
		h.done <- storeResult{err: err}
		return true, nil // the next event is tried at once
	}
	q.holdLocked(h)
	// Nothing overtakes a held event: the sign-outs behind it are dropped
	// (answered 0xFF, the meter re-sends them); sign-ins behind it are held.
	kept := q.events[:0]
	for _, o := range q.events {
		switch {
		case o.keep:
			q.holdLocked(o)
			kept = append(kept, o)
		case !o.gaveUp:
			o.done <- storeResult{err: fmt.Errorf("a held event ahead is not stored yet: %w", err)}
		}
	}
	q.events = kept
	return true, err
}

// flush stores what it can now; it reports whether the queue is empty.
func (q *heldQueue) flush() bool {
	for {
		worked, err := q.step()
		if err != nil {
			return false
		}
		if !worked {
			return true
		}
	}
}

// run stores events as they come until ctx ends, retrying a held event
// with capped backoff (a new event tries it again at once). stored is
// called after held events were stored.
func (q *heldQueue) run(ctx context.Context, stored func()) {
	var wg sync.WaitGroup
	for _, s := range q.spills {
		wg.Go(func() { s.run(ctx.Done()) })
	}
	defer wg.Wait()
	wait := heldRetryMin
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for {
		q.mu.Lock()
		heldBefore := q.heldLocked()
		q.mu.Unlock()
		worked, err := q.step()
		switch {
		case err != nil:
			t.Reset(wait)
			wait = min(2*wait, heldRetryMax)
		case worked:
			wait = heldRetryMin
			if heldBefore > 0 {
				stored()
			}
			continue
		default:
			wait = heldRetryMin
		}
		select {
		case <-ctx.Done():
			return
		case <-q.kick:
		case <-t.C:
		}
		t.Stop()
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
	st.SpillFile, st.OnDisk, st.SpillError = q.spills[0].report(snap)
	if len(q.spills) > 1 {
		st.RuntimeSpillFile, st.InRuntimeDir, st.RuntimeSpillError = q.spills[1].report(snap)
	}
	return st
}

// report is what status shows of spill file s: its path, how many of the
// held events in snap it holds, and its last write error.
func (s *spill) report(snap *heldSnapshot) (path string, held int, errText string) {
	sp := s.state()
	if sp.err != nil {
		errText = sp.err.Error()
	}
	if snap.Count > 0 && sp.written >= snap.firstSeq {
		held = min(snap.Count, int(sp.written-snap.firstSeq+1))
	}
	return s.path, held, errText
}

// publishLocked takes the snapshot status reports.
func (q *heldQueue) publishLocked() {
	snap := heldSnapshot{}
	for _, h := range q.events {
		if !h.held {
			continue
		}
		if snap.Count == 0 {
			snap.Oldest, snap.firstSeq = h.arrived, h.seq
			if q.lastErr != nil {
				snap.Reason = q.lastErr.Error()
			}
		}
		snap.Count++
	}
	q.snapshot.Store(&snap)
}

// drain makes a last attempt at shutdown, after run has returned, and
// brings the spill files up to date. It logs whatever is still held: from
// a spill file the next start stores it, unless no file could be written,
// and then it is lost with this process.
func (q *heldQueue) drain() {
	q.flush()
	var spillErr error
	kept := false
	for _, s := range q.spills {
		err := s.sync()
		kept = kept || err == nil
		spillErr = errors.Join(spillErr, err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, h := range q.events {
		if !h.held {
			continue
		}
		log := q.log.Warn
		msg := "stopping with an event the outbox never accepted; it is kept in the spill file and stored at the next start"
		if !kept {
			log = q.log.Error
			msg = "stopping with an event the outbox never accepted and no spill file could keep; it is lost with this process"
		}
		log(msg, "event_type", h.rec.Event.Type, "driver_license", redact.LicenceValue(h.rec.Event.DriverLicense),
			"identity", h.rec.Identity, "event_time", h.rec.Event.EventTime, "spill_file", q.spills[0].path,
			"err", q.lastErr, "spill_err", spillErr)
	}
}
