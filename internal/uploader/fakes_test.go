package uploader

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"taxi-agent/internal/outbox"
	"taxi-agent/internal/punch"
	"taxi-agent/internal/testsupport"
)

// fakeStore is an in-memory outbox with the real one's semantics for the
// five calls the drain loop makes. The On… func fields, when set, run
// first; an error they return fails the call and changes nothing.
type fakeStore struct {
	OnHead          func() error
	OnMarkDelivered func(id uint64, at time.Time) error
	OnRecordFailure func(id uint64, e outbox.AttemptError, next time.Time) error
	OnDeadLetter    func(id uint64, e outbox.AttemptError, reason string) error
	OnSetEventTime  func(id uint64, eventTime string) error

	mu      sync.Mutex
	recs    []outbox.Record // in id order
	first   int             // index of the first record that may be pending
	calls   map[string]int
	changed chan struct{} // closed and replaced on every change
	now     func() time.Time
}

var _ Store = (*fakeStore)(nil)

var errFakeNotPending = errors.New("fake store: record not pending")

func newFakeStore(now func() time.Time) *fakeStore {
	return &fakeStore{calls: map[string]int{}, changed: make(chan struct{}), now: now}
}

// add enqueues events and returns their ids.
func (s *fakeStore) add(evs ...punch.Event) []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []uint64
	for _, ev := range evs {
		id := uint64(len(s.recs) + 1)
		s.recs = append(s.recs, outbox.Record{ID: id, State: outbox.Pending, Event: ev, ReceivedAt: s.now()})
		ids = append(ids, id)
	}
	s.notify()
	return ids
}

// put stores a record as given (for states a test sets up directly).
func (s *fakeStore) put(r outbox.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.ID = uint64(len(s.recs) + 1)
	s.recs = append(s.recs, r)
	s.notify()
}

func (s *fakeStore) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *fakeStore) get(id uint64) outbox.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recs[id-1]
}

func (s *fakeStore) count(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

func (s *fakeStore) pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.recs[s.first:] {
		if r.State == outbox.Pending {
			n++
		}
	}
	return n
}

// waitFor blocks until cond holds (checked under the lock after every
// change) or 10 s pass.
func (s *fakeStore) waitFor(t testing.TB, what string, cond func(s *fakeStore) bool) {
	t.Helper()
	deadline := time.After(testsupport.Patience(10 * time.Second))
	for {
		s.mu.Lock()
		ok, ch := cond(s), s.changed
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out waiting for %s; records: %+v", what, s.snapshot())
		}
	}
}

// snapshot copies the records for messages.
func (s *fakeStore) snapshot() []outbox.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.recs)
}

// pendingRec returns record id if it is pending.
func (s *fakeStore) pendingRec(id uint64) (*outbox.Record, error) {
	if id == 0 || int(id) > len(s.recs) || s.recs[id-1].State != outbox.Pending {
		return nil, fmt.Errorf("record %d: %w", id, errFakeNotPending)
	}
	return &s.recs[id-1], nil
}

func (s *fakeStore) Head() (outbox.Record, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["head"]++
	s.notify()
	if s.OnHead != nil {
		if err := s.OnHead(); err != nil {
			return outbox.Record{}, false, err
		}
	}
	for s.first < len(s.recs) && s.recs[s.first].State != outbox.Pending {
		s.first++
	}
	if s.first == len(s.recs) {
		return outbox.Record{}, false, nil
	}
	return s.recs[s.first], true, nil
}

func (s *fakeStore) MarkDelivered(id uint64, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["mark_delivered"]++
	if s.OnMarkDelivered != nil {
		if err := s.OnMarkDelivered(id, at); err != nil {
			return err
		}
	}
	r, err := s.pendingRec(id)
	if err != nil {
		return err
	}
	r.State, r.DeliveredAt = outbox.Delivered, at
	r.Attempts++
	s.notify()
	return nil
}

func (s *fakeStore) RecordFailure(id uint64, e outbox.AttemptError, next time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["record_failure"]++
	if s.OnRecordFailure != nil {
		if err := s.OnRecordFailure(id, e, next); err != nil {
			return err
		}
	}
	r, err := s.pendingRec(id)
	if err != nil {
		return err
	}
	r.Attempts++
	r.LastError = &e
	r.NextAttempt = next
	s.notify()
	return nil
}

func (s *fakeStore) DeadLetter(id uint64, e outbox.AttemptError, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["dead_letter"]++
	if s.OnDeadLetter != nil {
		if err := s.OnDeadLetter(id, e, reason); err != nil {
			return err
		}
	}
	r, err := s.pendingRec(id)
	if err != nil {
		return err
	}
	if e != (outbox.AttemptError{}) {
		r.Attempts++
		r.LastError = &e
	}
	r.State, r.DeadAt, r.DeadReason = outbox.Dead, s.now(), reason
	s.notify()
	return nil
}

func (s *fakeStore) SetEventTime(id uint64, eventTime string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["set_event_time"]++
	if s.OnSetEventTime != nil {
		if err := s.OnSetEventTime(id, eventTime); err != nil {
			return err
		}
	}
	r, err := s.pendingRec(id)
	if err != nil {
		return err
	}
	r.Event.EventTime = eventTime
	s.notify()
	return nil
}

// testEpoch is where the drain loop's fake clock starts.
var testEpoch = time.Date(2026, 11, 28, 10, 30, 0, 0, time.UTC)
