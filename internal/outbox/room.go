package outbox

import (
	"errors"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// The size bound. bbolt refuses to grow the file past Options.MaxSize with
// ErrMaxSizeReached, and every transaction, a delivery or a deletion too,
// needs a few fresh pages because bbolt copies on write. A file filled to
// the brim by Enqueue could then no longer be drained. So Enqueue stops
// while reservePages pages are still free below bbolt's limit, and only
// Enqueue checks: the uploader and the technician may use the reserve.
//
// How many pages a transaction needs depends on the records: a record
// with a 2 kB identity puts 2 kB keys in the identity index's branches,
// which then hold a handful of keys each, so the index is deep and its
// nodes span several pages. Fixed guesses fell short (an enqueue took
// more than its slack and ate the delivery reserve; a prune batch of 64
// needed more pages than the whole reserve and, failing as one
// transaction, deleted nothing), so hasRoom sizes both by the largest
// enqueue and change measured since Open, and deleteDelivered splits a
// batch that does not fit down to single records.
const (
	// enqueueSlackPages is an upper bound of the pages one enqueue
	// allocates (two leaves, their branches, the root); with at least
	// this many free pages an enqueue does not grow the file.
	enqueueSlackPages = 8

	minReservePages = 16
	maxReservePages = 256

	// deleteBatch bounds the records removed per transaction by prune
	// and purge: removing a record also dirties a random leaf of the
	// identity index and its branches, so a batch needs many fresh
	// pages; at the bound deleteDelivered splits it.
	deleteBatch = 64

	// roomBatches bounds the work Enqueue spends pruning for room.
	roomBatches = 32

	// pruneEvery is how often MarkDelivered prunes by retention.
	pruneEvery = 24 * time.Hour
)

// errNoRoom and errRollback end a write transaction without committing.
var (
	errNoRoom   = errors.New("no room")
	errRollback = errors.New("nothing to commit")
)

func reservePages(maxSize, pageSize int) int {
	return min(max(maxSize/32/pageSize, minReservePages), maxReservePages)
}

// hasRoom reports whether one more enqueue leaves the reserve intact. The
// reserve may be free pages inside the file or room for the file to grow:
// once pruning has let the file reach MaxSize, only free pages are left,
// and they must cover the reserve too, or a delivery could find none.
func (o *Outbox) hasRoom(tx *bolt.Tx) bool {
	st := o.db.Stats()
	want := o.slackPages() + o.reserve()
	free := st.FreePageN + st.PendingPageN
	if free >= want {
		return true
	}
	ps := o.db.Info().PageSize
	need := int(tx.Size()) + (want-free)*ps
	return boltFits(need, o.opts.MaxSize, o.db.AllocSize)
}

// slackPages is what one enqueue may allocate: the most one has, at
// least enqueueSlackPages.
func (o *Outbox) slackPages() int {
	return max(enqueueSlackPages, int(o.enqueuePages.Load()))
}

// reserve is the free pages kept for deliveries, dead-letters and
// prunes: reservePages, and at least one change plus the deletion of one
// delivered record, which dirties no more than an enqueue (the same
// record and identity paths), so that the pages a full outbox has left
// can always deliver once and prune once.
func (o *Outbox) reserve() int {
	return max(o.reservePages, int(o.changePages.Load())+o.slackPages())
}

// notePages records that tx, committed, allocated pages; into keeps the
// largest such count.
func (o *Outbox) notePages(into *atomic.Int64, tx *bolt.Tx) {
	st := tx.Stats()
	n := st.GetPageAlloc() / int64(o.pageSize)
	for {
		cur := into.Load()
		if n <= cur || into.CompareAndSwap(cur, n) {
			return
		}
	}
}

// boltFits reports whether bbolt would let its data grow to sz bytes: it
// mirrors DB.allocate of bbolt v1.5.0, which checks the next file size,
// a power of two from 32 KiB while that is at most AllocSize, then the
// needed size plus AllocSize.
func boltFits(sz, maxSize, allocSize int) bool {
	mm := 1 << 15
	for mm < sz && mm < 1<<30 {
		mm <<= 1
	}
	next := max(mm, sz)
	if next > allocSize {
		next = sz + allocSize
	}
	return next <= maxSize
}

// noteFull logs the outbox filling up and recovering, once each.
func (o *Outbox) noteFull(full bool) {
	o.mu.Lock()
	changed := o.full != full
	o.full = full
	o.mu.Unlock()
	if !changed {
		return
	}
	if full {
		o.log.Error("outbox full: refusing new events until records are delivered", "max_size", o.opts.MaxSize)
	} else {
		o.log.Info("outbox has room again")
	}
}

func (o *Outbox) isFull() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.full
}

// pruneForRoom deletes delivered records, oldest id first and regardless
// of retention, until an enqueue fits or none are left. It returns how
// many it deleted.
func (o *Outbox) pruneForRoom() (total int, err error) {
	defer func() {
		if total > 0 {
			o.log.Warn("outbox full: pruned delivered records before their retention ended", "count", total)
		}
	}()
	for range roomBatches {
		var ids []uint64
		room := false
		err := o.db.View(func(tx *bolt.Tx) error {
			if room = o.hasRoom(tx); room {
				return nil
			}
			c := tx.Bucket(stateBuckets[Delivered]).Cursor()
			for k, _ := c.First(); k != nil && len(ids) < deleteBatch; k, _ = c.Next() {
				if id, ok := keyID(k); ok {
					ids = append(ids, id)
				}
			}
			return nil
		})
		if err != nil || room || len(ids) == 0 {
			return total, err
		}
		n, err := o.deleteDelivered(ids, time.Time{})
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// deleteDelivered removes the delivered records among ids whose delivery
// is not after cutoff (any, for a zero cutoff). A batch that needs more
// fresh pages than the full file has left is split in halves, each its
// own transaction, down to single records: the pages one committed half
// frees are there for the next, so a full outbox can always be pruned.
func (o *Outbox) deleteDelivered(ids []uint64, cutoff time.Time) (int, error) {
	n, err := o.deleteDeliveredOnce(ids, cutoff)
	if !errors.Is(err, berrors.ErrMaxSizeReached) || len(ids) < 2 {
		return n, err
	}
	half := len(ids) / 2
	n, err = o.deleteDelivered(ids[:half], cutoff)
	if err != nil {
		return n, err
	}
	m, err := o.deleteDelivered(ids[half:], cutoff)
	return n + m, err
}

func (o *Outbox) deleteDeliveredOnce(ids []uint64, cutoff time.Time) (int, error) {
	n := 0
	err := o.update(func(tx *bolt.Tx) error {
		bs, err := openBuckets(tx)
		if err != nil {
			return err
		}
		for _, id := range ids {
			v := bs.state[Delivered].Get(idKey(id))
			if v == nil {
				continue
			}
			r, err := decodeStored(v, Delivered, id)
			if err != nil {
				return err
			}
			if !cutoff.IsZero() && r.DeliveredAt.After(cutoff) {
				continue
			}
			if err := bs.remove(&r); err != nil {
				return err
			}
			n++
		}
		if n == 0 {
			return errRollback
		}
		return nil
	})
	if errors.Is(err, errRollback) {
		err = nil
	}
	return n, err
}
