package outbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"taxi-agent/internal/punch"
)

// errDuplicate ends an enqueue transaction without writing.
var errDuplicate = errors.New("duplicate")

// Enqueue stores r and returns its id once the commit is fsync'd: only
// then may the meter be told the event is stored.
//
// The caller fills Event, Identity, ReceivedAt, MeterTime, BootID and
// Monotonic; Enqueue assigns the next id (ids grow strictly in arrival
// order), sets State to Pending and clears the delivery history fields.
//
// If a record with the same Identity is pending, dead, or was delivered
// less than Options.Retention ago, nothing is written and its id is
// returned with dup true. An empty Identity is never a duplicate (the event
// is kept rather than refused).
//
// In the same transaction Enqueue keeps the open shift: a SIGN_IN with a
// licence opens it; a SIGN_OUT closes it unless it is plainly from an
// earlier shift (another licence, or a meter time before the sign-in's).
//
// When the file is near Options.MaxSize, Enqueue first prunes delivered
// records (oldest first, even within retention); if that is not enough it
// fails with an error wrapping ErrFull. Pending and dead records are never
// dropped.
func (o *Outbox) Enqueue(r Record) (id uint64, dup bool, err error) {
	return o.enqueue(r, "")
}

// EnqueueDead stores r as Enqueue does, but dead at once with the given
// reason: an event that must never be sent (a sign-in without a driver
// licence) is still kept and shown to the technician.
func (o *Outbox) EnqueueDead(r Record, reason string) (id uint64, dup bool, err error) {
	if reason == "" {
		reason = "stored dead"
	}
	return o.enqueue(r, reason)
}

func (o *Outbox) enqueue(r Record, deadReason string) (id uint64, dup bool, err error) {
	if err := o.writable(); err != nil {
		return 0, false, fmt.Errorf("enqueue: %w", err)
	}
	r.DeadReason = deadReason
	id, dup, err = o.enqueueOnce(&r)
	if errors.Is(err, errNoRoom) {
		n, perr := o.pruneForRoom()
		if perr != nil {
			o.log.Warn("prune delivered records for room", "err", perr)
		}
		if n > 0 {
			id, dup, err = o.enqueueOnce(&r)
		}
	}
	if errors.Is(err, errNoRoom) {
		o.noteFull(true)
		return 0, false, fmt.Errorf("enqueue: %w", ErrFull)
	}
	if err != nil {
		return 0, false, fmt.Errorf("enqueue: %w", err)
	}
	o.noteFull(false)
	return id, dup, nil
}

func (o *Outbox) enqueueOnce(r *Record) (id uint64, dup bool, err error) {
	now := o.opts.Now()
	var wtx *bolt.Tx
	err = o.update(func(tx *bolt.Tx) error {
		wtx = tx
		bs, err := openBuckets(tx)
		if err != nil {
			return err
		}
		if r.Identity != "" {
			if id, dup, err = o.duplicateOf(bs, r.Identity, now); err != nil || dup {
				if err == nil {
					err = errDuplicate
				}
				return err
			}
		}
		if !o.hasRoom(tx) {
			return errNoRoom
		}
		id = getUint(bs.meta, keyLastID) + 1
		r.ID, r.State = id, Pending
		r.Attempts, r.NextAttempt, r.LastError = 0, time.Time{}, nil
		r.DeliveredAt, r.DeadAt, r.Requeued = time.Time{}, time.Time{}, 0 // DeadReason is enqueue's
		if r.DeadReason != "" {
			r.State, r.DeadAt = Dead, now
		}
		if err := bs.put(r); err != nil {
			return err
		}
		if err := putUint(bs.meta, keyLastID, id); err != nil {
			return err
		}
		if err := addCount(bs.meta, r.State, 1); err != nil {
			return err
		}
		if r.Identity != "" {
			if err := bs.identity.Put([]byte(r.Identity), idKey(id)); err != nil {
				return err
			}
		}
		return updateShift(bs.meta, r)
	})
	switch {
	case errors.Is(err, errDuplicate):
		return id, true, nil
	case errors.Is(err, berrors.ErrMaxSizeReached):
		return 0, false, errNoRoom
	case err != nil:
		return 0, false, err
	}
	o.notePages(&o.enqueuePages, wtx)
	return id, false, nil
}

// duplicateOf returns the id of the record that makes identity a
// duplicate, if any.
func (o *Outbox) duplicateOf(bs buckets, identity string, now time.Time) (uint64, bool, error) {
	v := bs.identity.Get([]byte(identity))
	if v == nil {
		return 0, false, nil
	}
	id, ok := keyID(v)
	if !ok {
		return 0, false, fmt.Errorf("identity %q: bad id: %w", identity, ErrCorrupt)
	}
	old, found, err := bs.find(id)
	if err != nil || !found {
		return 0, false, err
	}
	if old.State == Delivered && !now.Before(old.DeliveredAt.Add(o.opts.Retention)) {
		return 0, false, nil // delivered and past retention: a new event
	}
	return id, true, nil
}

// shift is the open sign-in, kept in the meta bucket.
type shift struct {
	Licence   string
	MeterTime time.Time
	ID        uint64
}

func updateShift(meta *bolt.Bucket, r *Record) error {
	switch r.Event.Type {
	case punch.SignIn:
		if r.Event.DriverLicense == "" {
			return nil
		}
		b := appendString(nil, r.Event.DriverLicense)
		b = appendTime(b, r.MeterTime)
		b = binary.AppendUvarint(b, r.ID)
		return meta.Put(keyShift, b)
	case punch.SignOut:
		cur, ok := getShift(meta)
		if !ok {
			return nil
		}
		if l := r.Event.DriverLicense; l != "" && l != cur.Licence {
			return nil // another driver's shift, re-sent late
		}
		if !r.MeterTime.IsZero() && !cur.MeterTime.IsZero() && r.MeterTime.Before(cur.MeterTime) {
			return nil // an earlier shift's sign-out, re-sent late
		}
		return meta.Delete(keyShift)
	}
	return nil
}

func getShift(meta *bolt.Bucket) (shift, bool) {
	v := meta.Get(keyShift)
	if v == nil {
		return shift{}, false
	}
	d := decoder{b: v}
	s := shift{Licence: d.string(), MeterTime: d.time(), ID: d.uvarint()}
	return s, d.err == nil && s.Licence != ""
}

// OpenShiftLicence returns the driver licence of the open sign-in, or ""
// when no shift is open. The meter fills a sign-out that carries no
// licence with it.
func (o *Outbox) OpenShiftLicence() (string, error) {
	if err := o.readable(); err != nil {
		return "", fmt.Errorf("read open shift: %w", err)
	}
	var licence string
	err := o.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return ErrCorrupt
		}
		s, _ := getShift(meta)
		licence = s.Licence
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("read open shift: %w", err)
	}
	return licence, nil
}

func (o *Outbox) readable() error {
	if o.closed.Load() {
		return ErrClosed
	}
	return nil
}

func (o *Outbox) writable() error {
	if o.closed.Load() {
		return ErrClosed
	}
	if o.opts.ReadOnly {
		return ErrReadOnly
	}
	return nil
}
