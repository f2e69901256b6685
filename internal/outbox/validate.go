package outbox

import (
	"fmt"
	"os"
	"runtime/debug"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// guard runs fn, turning a panic or a memory fault (a page of the mapping
// beyond a truncated file, a garbage page offset) into an ErrCorrupt error,
// so that a bad file is moved aside instead of crashing the daemon into a
// restart loop.
func guard[T any](fn func() (T, error)) (v T, err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: reading it panicked: %v", ErrCorrupt, r)
		}
	}()
	return fn()
}

// validate reads the whole file through db, opened read-only: first its
// page structure (checkStructure, on the file itself: bbolt's cursors and
// checker loop for ever on a cycle), then the schema, every record, then
// bbolt's own consistency check. It reports fresh when the file is a valid
// bbolt file with no buckets yet (a crash between bbolt's creation and
// ours). Run it under guard: every page is first touched here, on the
// caller's goroutine, and only then by bbolt's checker, which runs on its
// own goroutine. db's shared lock keeps writers out while it reads.
func validate(db *bolt.DB, path string, fileSize int64) (fresh bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	m, err := checkStructure(f, fileSize)
	f.Close()
	if err != nil {
		return false, err
	}
	err = db.View(func(tx *bolt.Tx) error {
		if tx.Size() > fileSize {
			return fmt.Errorf("%w: truncated: %d bytes, its meta page needs %d", ErrCorrupt, fileSize, tx.Size())
		}
		// bbolt must walk the meta page that was checked.
		if uint64(tx.ID()) != m.txid || uint64(tx.Size()) != m.hwm*m.pageSize || uint64(tx.Cursor().Bucket().Root()) != m.root {
			return fmt.Errorf("%w: bbolt reads transaction %d of %d bytes, the structure check transaction %d of %d",
				ErrCorrupt, tx.ID(), tx.Size(), m.txid, m.hwm*m.pageSize)
		}
		if tx.Bucket(bucketMeta) == nil {
			n := 0
			_ = tx.ForEach(func([]byte, *bolt.Bucket) error { n++; return nil })
			if n == 0 {
				fresh = true
				return nil
			}
			return fmt.Errorf("%w: unknown schema: %d buckets and no meta", ErrCorrupt, n)
		}
		if v := getUint(tx.Bucket(bucketMeta), keySchema); v != schemaVersion {
			return fmt.Errorf("%w: unknown schema version %d", ErrCorrupt, v)
		}
		bs, err := openBuckets(tx)
		if err != nil {
			return err
		}
		for _, s := range allStates {
			if err := walkRecords(bs, s); err != nil {
				return err
			}
		}
		if err := bs.identity.ForEach(func(k, v []byte) error {
			if _, ok := keyID(v); !ok {
				return fmt.Errorf("%w: identity %q: bad id", ErrCorrupt, k)
			}
			return nil
		}); err != nil {
			return err
		}
		return bboltCheck(tx)
	})
	return fresh, err
}

func walkRecords(bs buckets, s State) error {
	c := bs.state[s].Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		id, ok := keyID(k)
		if !ok {
			return fmt.Errorf("%w: %s: bad key %x", ErrCorrupt, s, k)
		}
		if _, err := decodeStored(v, s, id); err != nil {
			return err
		}
	}
	return nil
}

// bboltCheck runs tx.Check and keeps the first few problems.
func bboltCheck(tx *bolt.Tx) error {
	var msgs []string
	n := 0
	for err := range tx.Check() {
		if n++; n <= 3 {
			msgs = append(msgs, err.Error())
		}
	}
	if n == 0 {
		return nil
	}
	return fmt.Errorf("%w: bbolt check: %d problems: %s", ErrCorrupt, n, strings.Join(msgs, "; "))
}
