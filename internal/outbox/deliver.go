package outbox

import (
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// EventTimeLayout is the layout of Event.EventTime.
const EventTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// Head returns the oldest pending record, due or not: the uploader checks
// NextAttempt itself. Delivery is strictly in id order, so a record that
// keeps failing holds back the ones after it until it is delivered or
// dead-lettered. ok is false when nothing is pending.
func (o *Outbox) Head() (r Record, ok bool, err error) {
	if err := o.readable(); err != nil {
		return Record{}, false, fmt.Errorf("read head: %w", err)
	}
	err = o.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(stateBuckets[Pending])
		if b == nil {
			return ErrCorrupt
		}
		k, v := b.Cursor().First()
		if k == nil {
			return nil
		}
		id, _ := keyID(k)
		r, err = decodeStored(v, Pending, id)
		ok = err == nil
		return err
	})
	if err != nil {
		return Record{}, false, fmt.Errorf("read head: %w", err)
	}
	return r, ok, nil
}

// MarkDelivered moves pending record id to delivered, stamped at; the
// attempt that delivered it counts in Attempts. It is kept for
// Options.Retention, then pruned. Once a day (by the injected
// clock) it also prunes by retention.
func (o *Outbox) MarkDelivered(id uint64, at time.Time) error {
	err := o.change("mark delivered", id, Pending, func(bs buckets, r *Record) error {
		r.State, r.DeliveredAt = Delivered, at
		r.Attempts++
		if err := bs.move(r, Pending); err != nil {
			return err
		}
		return putTime(bs.meta, keyLastDelivered, at)
	})
	if err != nil {
		return err
	}
	o.maybePrune()
	return nil
}

// RecordFailure notes a failed attempt on pending record id: Attempts is
// incremented, LastError set, and the record is due again at next.
func (o *Outbox) RecordFailure(id uint64, e AttemptError, next time.Time) error {
	return o.change("record failure", id, Pending, func(bs buckets, r *Record) error {
		r.Attempts++
		r.LastError = &e
		r.NextAttempt = next
		return bs.put(r)
	})
}

// DeadLetter moves pending record id to dead with reason. A non-zero e is
// the attempt that showed the event is bad: it counts as an attempt and
// becomes LastError. Dead records stay until a technician retries or
// purges them.
func (o *Outbox) DeadLetter(id uint64, e AttemptError, reason string) error {
	now := o.opts.Now()
	return o.change("dead-letter", id, Pending, func(bs buckets, r *Record) error {
		if e != (AttemptError{}) {
			r.Attempts++
			r.LastError = &e
		}
		r.State, r.DeadAt, r.DeadReason = Dead, now, reason
		return bs.move(r, Pending)
	})
}

// SetEventTime stamps a record held because the clock was untrusted at
// receipt. eventTime must be in EventTimeLayout. The record must be pending
// or dead.
func (o *Outbox) SetEventTime(id uint64, eventTime string) error {
	if _, err := time.Parse(EventTimeLayout, eventTime); err != nil || len(eventTime) != len("2006-01-02T15:04:05.000+08:00") {
		return fmt.Errorf("set event time %d: %q: %w", id, eventTime, ErrBadEventTime)
	}
	if err := o.writable(); err != nil {
		return fmt.Errorf("set event time %d: %w", id, err)
	}
	err := o.update(func(tx *bolt.Tx) error {
		bs, err := openBuckets(tx)
		if err != nil {
			return err
		}
		r, found, err := bs.find(id)
		switch {
		case err != nil:
			return err
		case !found:
			return ErrNotFound
		case r.State == Delivered:
			return fmt.Errorf("is %s: %w", r.State, ErrNotPending)
		}
		r.Event.EventTime = eventTime
		return bs.put(&r)
	})
	if err != nil {
		return fmt.Errorf("set event time %d: %w", id, err)
	}
	return nil
}

// change runs fn on record id, which must be in state from, in one
// durable transaction.
func (o *Outbox) change(op string, id uint64, from State, fn func(bs buckets, r *Record) error) error {
	if err := o.writable(); err != nil {
		return fmt.Errorf("%s %d: %w", op, id, err)
	}
	var wtx *bolt.Tx
	err := o.update(func(tx *bolt.Tx) error {
		wtx = tx
		bs, err := openBuckets(tx)
		if err != nil {
			return err
		}
		r, err := bs.get(id, from)
		if err != nil {
			return err
		}
		return fn(bs, &r)
	})
	if err != nil {
		return fmt.Errorf("%s %d: %w", op, id, err)
	}
	o.notePages(&o.changePages, wtx)
	return nil
}

// maybePrune prunes by retention when the last prune is a day old.
func (o *Outbox) maybePrune() {
	now := o.opts.Now()
	o.mu.Lock()
	due := now.Sub(o.lastPrune) >= pruneEvery || now.Before(o.lastPrune)
	o.mu.Unlock()
	if !due {
		return
	}
	if _, err := o.Prune(now); err != nil && !errors.Is(err, ErrClosed) {
		o.log.Warn("prune delivered records", "err", err)
	}
}
