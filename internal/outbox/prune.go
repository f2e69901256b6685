package outbox

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Prune deletes the delivered records delivered at or before
// now - Options.Retention, with their identity entries, and returns how
// many. It scans only the delivered records, in read transactions, and
// deletes them in small durable batches. Open runs it, and MarkDelivered
// runs it once a day; the agent need not call it.
func (o *Outbox) Prune(now time.Time) (int, error) {
	if err := o.writable(); err != nil {
		return 0, fmt.Errorf("prune: %w", err)
	}
	cutoff := now.Add(-o.opts.Retention)
	total := 0
	var after uint64
	for {
		var ids []uint64
		done := false
		err := o.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(stateBuckets[Delivered]).Cursor()
			k, v := c.Seek(idKey(after + 1))
			for ; k != nil && len(ids) < deleteBatch; k, v = c.Next() {
				id, ok := keyID(k)
				if !ok {
					return fmt.Errorf("delivered: bad key %x: %w", k, ErrCorrupt)
				}
				after = id
				r, err := decodeStored(v, Delivered, id)
				if err != nil {
					return err
				}
				if !r.DeliveredAt.After(cutoff) {
					ids = append(ids, id)
				}
			}
			done = k == nil
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("prune: %w", err)
		}
		if len(ids) > 0 {
			n, err := o.deleteDelivered(ids, cutoff)
			total += n
			if err != nil {
				return total, fmt.Errorf("prune: %w", err)
			}
		}
		if done {
			break
		}
	}
	o.mu.Lock()
	o.lastPrune = now
	o.mu.Unlock()
	if total > 0 {
		o.log.Info("pruned delivered records past retention", "count", total, "retention", o.opts.Retention)
	}
	return total, nil
}
