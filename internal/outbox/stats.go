package outbox

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Stats is the outbox's state for status output. The counts come from
// counters kept in the same transactions as the records, so reading them
// does not scan the file.
type Stats struct {
	Pending   uint64 `json:"pending"`
	Dead      uint64 `json:"dead"`
	Delivered uint64 `json:"delivered"`

	// OldestPending is the receipt time of the head record (zero when
	// nothing is pending); its age is by the outbox's clock and reads 0
	// when the receipt time is in the future.
	OldestPending           time.Time     `json:"oldest_pending,omitzero"`
	OldestPendingAge        time.Duration `json:"-"`
	OldestPendingAgeSeconds int64         `json:"oldest_pending_age_seconds"`
	LastDelivered           time.Time     `json:"last_delivered,omitzero"`

	FileSize int64 `json:"file_size"` // bytes on disk
	UsedSize int64 `json:"used_size"` // bbolt's high-water mark, free pages included
	MaxSize  int   `json:"max_size"`
	Full     bool  `json:"full"` // the last Enqueue failed with ErrFull

	// CorruptFiles counts the <path>.corrupt-* files next to the outbox,
	// so it survives restarts; a technician removes them once examined.
	CorruptFiles int    `json:"corrupt_files"`
	Quarantined  string `json:"quarantined,omitempty"` // what Open moved aside, if it did
}

// Stats returns counts per state, the oldest pending record's age, the
// last delivery, file sizes and the number of quarantined files.
func (o *Outbox) Stats() (Stats, error) {
	if err := o.readable(); err != nil {
		return Stats{}, fmt.Errorf("read stats: %w", err)
	}
	s := Stats{MaxSize: o.opts.MaxSize, Full: o.isFull()}
	if o.quarantined != nil {
		s.Quarantined = o.quarantined.Error()
	}
	err := o.db.View(func(tx *bolt.Tx) error {
		bs, err := openBuckets(tx)
		if err != nil {
			return err
		}
		s.Pending = getUint(bs.meta, counterKeys[Pending])
		s.Dead = getUint(bs.meta, counterKeys[Dead])
		s.Delivered = getUint(bs.meta, counterKeys[Delivered])
		s.LastDelivered = getTime(bs.meta, keyLastDelivered)
		s.UsedSize = tx.Size()
		if k, v := bs.state[Pending].Cursor().First(); k != nil {
			id, _ := keyID(k)
			r, err := decodeStored(v, Pending, id)
			if err != nil {
				return err
			}
			s.OldestPending = r.ReceivedAt
			s.OldestPendingAge = max(o.opts.Now().Sub(r.ReceivedAt), 0)
			s.OldestPendingAgeSeconds = int64(s.OldestPendingAge / time.Second)
		}
		return nil
	})
	if err != nil {
		return Stats{}, fmt.Errorf("read stats: %w", err)
	}
	if fi, err := os.Stat(o.path); err == nil {
		s.FileSize = fi.Size()
	}
	if s.CorruptFiles, err = countCorrupt(o.path); err != nil {
		return Stats{}, fmt.Errorf("read stats: %w", err)
	}
	return s, nil
}

// countCorrupt counts the quarantined files next to path.
func countCorrupt(path string) (int, error) {
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		return 0, err
	}
	prefix := filepath.Base(path) + ".corrupt-"
	n := 0
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			n++
		}
	}
	return n, nil
}
