package outbox

import (
	"errors"
	"fmt"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Page sizes of List.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// List returns up to limit records in state (every state for ""), oldest
// id first, starting after afterID. nextAfter is the afterID of the next
// page, or 0 when there is none. Memory is bounded by the page: a backlog
// is walked page by page, each in its own short read transaction.
// limit <= 0 means DefaultListLimit; it is capped at MaxListLimit.
func (o *Outbox) List(state State, afterID uint64, limit int) (recs []Record, nextAfter uint64, err error) {
	if err := o.readable(); err != nil {
		return nil, 0, fmt.Errorf("list records: %w", err)
	}
	states := allStates
	if state != "" {
		if _, ok := stateBuckets[state]; !ok {
			return nil, 0, fmt.Errorf("list records: %q: %w", state, ErrBadState)
		}
		states = []State{state}
	}
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	if afterID == math.MaxUint64 {
		return nil, 0, nil
	}
	err = o.db.View(func(tx *bolt.Tx) error {
		m, err := newMerge(tx, states, afterID+1)
		if err != nil {
			return err
		}
		for len(recs) < limit {
			r, ok, err := m.next()
			if err != nil || !ok {
				return err
			}
			recs = append(recs, r)
		}
		if m.more() {
			nextAfter = recs[len(recs)-1].ID
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list records: %w", err)
	}
	return recs, nextAfter, nil
}

// merge walks the buckets of several states in id order.
type merge struct {
	states []State
	curs   []*bolt.Cursor
	keys   [][]byte
	vals   [][]byte
}

func newMerge(tx *bolt.Tx, states []State, from uint64) (*merge, error) {
	m := &merge{states: states}
	for _, s := range states {
		b := tx.Bucket(stateBuckets[s])
		if b == nil {
			return nil, fmt.Errorf("bucket %s missing: %w", s, ErrCorrupt)
		}
		c := b.Cursor()
		k, v := c.Seek(idKey(from))
		m.curs, m.keys, m.vals = append(m.curs, c), append(m.keys, k), append(m.vals, v)
	}
	return m, nil
}

func (m *merge) next() (Record, bool, error) {
	best := -1
	for i, k := range m.keys {
		if k != nil && (best < 0 || string(k) < string(m.keys[best])) {
			best = i
		}
	}
	if best < 0 {
		return Record{}, false, nil
	}
	id, ok := keyID(m.keys[best])
	if !ok {
		return Record{}, false, fmt.Errorf("%s: bad key %x: %w", m.states[best], m.keys[best], ErrCorrupt)
	}
	r, err := decodeStored(m.vals[best], m.states[best], id)
	m.keys[best], m.vals[best] = m.curs[best].Next()
	return r, err == nil, err
}

func (m *merge) more() bool {
	for _, k := range m.keys {
		if k != nil {
			return true
		}
	}
	return false
}

// Get returns record id in whatever state it is, or ErrNotFound.
func (o *Outbox) Get(id uint64) (Record, error) {
	if err := o.readable(); err != nil {
		return Record{}, fmt.Errorf("get record %d: %w", id, err)
	}
	var r Record
	err := o.db.View(func(tx *bolt.Tx) error {
		bs, err := openBuckets(tx)
		if err != nil {
			return err
		}
		var found bool
		if r, found, err = bs.find(id); err == nil && !found {
			err = ErrNotFound
		}
		return err
	})
	if err != nil {
		return Record{}, fmt.Errorf("get record %d: %w", id, err)
	}
	return r, nil
}

// Retry moves dead record id back to pending, due at once, with its
// attempts reset; LastError is kept and Requeued counts the retries. It
// keeps its id, so it goes back into its place in arrival order: if it is
// older than every pending record it is the next Head.
func (o *Outbox) Retry(id uint64) error {
	return o.change("retry", id, Dead, func(bs buckets, r *Record) error {
		requeue(r)
		return bs.move(r, Dead)
	})
}

func requeue(r *Record) {
	r.State = Pending
	r.Attempts = 0
	r.NextAttempt = time.Time{}
	r.DeadAt, r.DeadReason = time.Time{}, ""
	r.Requeued++
}

// RetryAllDead moves every dead record back to pending, as Retry does, in
// batches of durable transactions, and returns how many it moved.
func (o *Outbox) RetryAllDead() (int, error) {
	n, err := o.eachDead("retry dead records", func(bs buckets, r *Record) error {
		requeue(r)
		return bs.move(r, Dead)
	})
	if n > 0 {
		o.log.Info("dead records moved back to pending", "count", n)
	}
	return n, err
}

// Purge deletes dead record id and its identity entry, so a re-sent frame
// with the same identity would be stored anew. Only dead records can be
// purged: ErrNotDead otherwise.
func (o *Outbox) Purge(id uint64) error {
	return o.change("purge", id, Dead, func(bs buckets, r *Record) error {
		return bs.remove(r)
	})
}

// PurgeAllDead purges every dead record, in batches, and returns how many.
func (o *Outbox) PurgeAllDead() (int, error) {
	n, err := o.eachDead("purge dead records", func(bs buckets, r *Record) error {
		return bs.remove(r)
	})
	if n > 0 {
		o.log.Info("dead records purged", "count", n)
	}
	return n, err
}

// eachDead applies fn, which must take the record out of the dead bucket,
// to every dead record, deleteBatch records per transaction.
func (o *Outbox) eachDead(op string, fn func(bs buckets, r *Record) error) (int, error) {
	if err := o.writable(); err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	total := 0
	for {
		n := 0
		err := o.update(func(tx *bolt.Tx) error {
			bs, err := openBuckets(tx)
			if err != nil {
				return err
			}
			var recs []Record
			c := bs.state[Dead].Cursor()
			for k, v := c.First(); k != nil && len(recs) < deleteBatch; k, v = c.Next() {
				id, _ := keyID(k)
				r, err := decodeStored(v, Dead, id)
				if err != nil {
					return err
				}
				recs = append(recs, r)
			}
			for i := range recs {
				if err := fn(bs, &recs[i]); err != nil {
					return err
				}
			}
			if n = len(recs); n == 0 {
				return errRollback
			}
			return nil
		})
		if errors.Is(err, errRollback) {
			return total, nil
		}
		if err != nil {
			return total, fmt.Errorf("%s: %w", op, err)
		}
		total += n
	}
}

// Export calls fn with every record, oldest id first, reading a page at a
// time so that memory stays flat and no transaction is held while fn runs
// (fn may write to a slow socket). A record that changes state during the
// export appears once, in the state it had when its page was read. fn's
// error stops the export and is returned.
func (o *Outbox) Export(fn func(Record) error) error {
	var after uint64
	for {
		recs, next, err := o.List("", after, exportPage)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		for _, r := range recs {
			if err := fn(r); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		after = next
	}
}

const exportPage = 256
