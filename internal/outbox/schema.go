package outbox

import (
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The file's layout (schema 1). Records live in one bucket per state, keyed
// by their id as 8 big-endian bytes, so each bucket iterates in arrival
// order and a state change is a delete plus a put. Head reads the first
// key of the pending bucket and never touches delivered records.
//
//	meta       schema version, last id, per-state counters, last delivery,
//	           open shift (all updated in the transaction that changes them)
//	pending    id -> record
//	dead       id -> record
//	delivered  id -> record
//	identity   identity key -> id, for de-duplication of re-sent frames
const schemaVersion = 1

// stateFillPercent is bbolt's split threshold for the record buckets.
const stateFillPercent = 0.9

var (
	bucketMeta     = []byte("meta")
	bucketIdentity = []byte("identity")

	stateBuckets = map[State][]byte{
		Pending:   []byte("pending"),
		Dead:      []byte("dead"),
		Delivered: []byte("delivered"),
	}

	// allStates is the order in which Get looks a record up.
	allStates = []State{Pending, Dead, Delivered}

	keySchema        = []byte("schema")
	keyLastID        = []byte("last_id")
	keyLastDelivered = []byte("last_delivered")
	keyShift         = []byte("shift")
	counterKeys      = map[State][]byte{
		Pending:   []byte("n_pending"),
		Dead:      []byte("n_dead"),
		Delivered: []byte("n_delivered"),
	}
)

func idKey(id uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], id)
	return k[:]
}

func keyID(k []byte) (uint64, bool) {
	if len(k) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(k), true
}

func getUint(b *bolt.Bucket, key []byte) uint64 {
	v := b.Get(key)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func putUint(b *bolt.Bucket, key []byte, v uint64) error {
	return b.Put(key, idKey(v))
}

// addCount moves the counter of state s by delta.
func addCount(meta *bolt.Bucket, s State, delta int) error {
	n := int64(getUint(meta, counterKeys[s])) + int64(delta)
	if n < 0 {
		n = 0
	}
	return putUint(meta, counterKeys[s], uint64(n))
}

func getTime(b *bolt.Bucket, key []byte) time.Time {
	v := b.Get(key)
	if len(v) != 8 {
		return time.Time{}
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC()
}

func putTime(b *bolt.Bucket, key []byte, t time.Time) error {
	return putUint(b, key, uint64(t.UnixNano()))
}

// buckets are the buckets of one transaction.
type buckets struct {
	meta     *bolt.Bucket
	identity *bolt.Bucket
	state    map[State]*bolt.Bucket
}

func openBuckets(tx *bolt.Tx) (buckets, error) {
	bs := buckets{
		meta:     tx.Bucket(bucketMeta),
		identity: tx.Bucket(bucketIdentity),
		state:    make(map[State]*bolt.Bucket, len(stateBuckets)),
	}
	if bs.meta == nil || bs.identity == nil {
		return bs, fmt.Errorf("open buckets: missing: %w", ErrCorrupt)
	}
	for s, name := range stateBuckets {
		if bs.state[s] = tx.Bucket(name); bs.state[s] == nil {
			return bs, fmt.Errorf("open buckets: missing %s: %w", name, ErrCorrupt)
		}
		// Ids grow, so records are appended: fill leaves before
		// splitting them instead of leaving them half empty.
		bs.state[s].FillPercent = stateFillPercent
	}
	return bs, nil
}

// find looks id up in every state bucket.
func (bs buckets) find(id uint64) (Record, bool, error) {
	k := idKey(id)
	for _, s := range allStates {
		if v := bs.state[s].Get(k); v != nil {
			r, err := decodeStored(v, s, id)
			return r, true, err
		}
	}
	return Record{}, false, nil
}

// get returns record id, which must be in state s.
func (bs buckets) get(id uint64, s State) (Record, error) {
	v := bs.state[s].Get(idKey(id))
	if v == nil {
		r, found, err := bs.find(id)
		switch {
		case err != nil:
			return Record{}, err
		case !found:
			return Record{}, ErrNotFound
		default:
			return Record{}, fmt.Errorf("is %s: %w", r.State, stateErr(s))
		}
	}
	return decodeStored(v, s, id)
}

func stateErr(want State) error {
	if want == Dead {
		return ErrNotDead
	}
	return ErrNotPending
}

// put stores r in its state's bucket.
func (bs buckets) put(r *Record) error {
	return bs.state[r.State].Put(idKey(r.ID), encodeRecord(r))
}

// move takes r out of state from and stores it in r.State, with counters.
func (bs buckets) move(r *Record, from State) error {
	if err := bs.state[from].Delete(idKey(r.ID)); err != nil {
		return err
	}
	if err := bs.put(r); err != nil {
		return err
	}
	if err := addCount(bs.meta, from, -1); err != nil {
		return err
	}
	return addCount(bs.meta, r.State, 1)
}

// remove deletes r and, when it still points at r, its identity entry.
func (bs buckets) remove(r *Record) error {
	if err := bs.state[r.State].Delete(idKey(r.ID)); err != nil {
		return err
	}
	if r.Identity != "" {
		if v := bs.identity.Get([]byte(r.Identity)); v != nil {
			if id, ok := keyID(v); ok && id == r.ID {
				if err := bs.identity.Delete([]byte(r.Identity)); err != nil {
					return err
				}
			}
		}
	}
	return addCount(bs.meta, r.State, -1)
}

// decodeStored decodes a value found under id in the bucket of state s and
// checks that it agrees with where it was found.
func decodeStored(v []byte, s State, id uint64) (Record, error) {
	r, err := decodeRecord(v)
	if err != nil {
		return Record{}, fmt.Errorf("read record %d: %w: %w", id, ErrCorrupt, err)
	}
	if r.ID != id || r.State != s {
		return Record{}, fmt.Errorf("read record %d: stored as %d/%s in %s: %w", id, r.ID, r.State, s, ErrCorrupt)
	}
	return r, nil
}
