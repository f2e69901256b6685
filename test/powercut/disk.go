package powercut

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
)

// BlockSize is the unit a cut tears at: a block of the volatile cache
// either reaches the medium whole or not at all (ext4's block size).
const BlockSize = 4096

// Disk is a block device with a volatile write cache. Reads see every
// write; a write becomes durable only when a flush follows it (or when it
// is written with FUA). Cut models the power going: the cached writes are
// lost, all of them or a random subset of their blocks, and the device
// comes back with what was durable. It is safe for concurrent use.
type Disk struct {
	mu      sync.Mutex
	cur     []byte           // what reads return
	durable []byte           // what survives a cut
	dirty   map[int64][]byte // block number -> newest cached content
	stats   DiskStats
}

// DiskStats counts what the device was asked to do.
type DiskStats struct {
	Writes, FUAWrites, Flushes int
	// DroppedBlocks and KeptBlocks are the cached blocks cuts dropped and
	// let through.
	DroppedBlocks, KeptBlocks int
}

// NewDisk returns a disk whose durable content is image (copied).
func NewDisk(image []byte) (*Disk, error) {
	if len(image) == 0 || len(image)%BlockSize != 0 {
		return nil, fmt.Errorf("disk image of %d bytes: want a positive multiple of %d", len(image), BlockSize)
	}
	return &Disk{
		cur:     append([]byte(nil), image...),
		durable: append([]byte(nil), image...),
		dirty:   map[int64][]byte{},
	}, nil
}

// Size is the size of the device in bytes.
func (d *Disk) Size() int64 { return int64(len(d.cur)) }

func (d *Disk) check(off int64, n int) error {
	if off < 0 || n < 0 || off+int64(n) > int64(len(d.cur)) {
		return fmt.Errorf("%d bytes at %d: beyond the %d-byte device", n, off, len(d.cur))
	}
	return nil
}

// ReadAt reads from what was written, durable or not.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check(off, len(p)); err != nil {
		return 0, err
	}
	return copy(p, d.cur[off:]), nil
}

// WriteAt writes p at off into the cache; with fua the blocks it touches
// are durable when it returns.
func (d *Disk) WriteAt(p []byte, off int64, fua bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check(off, len(p)); err != nil {
		return err
	}
	d.stats.Writes++
	if fua {
		d.stats.FUAWrites++
	}
	copy(d.cur[off:], p)
	if len(p) == 0 {
		return nil
	}
	for b := off / BlockSize; b <= (off+int64(len(p))-1)/BlockSize; b++ {
		blk := d.cur[b*BlockSize : (b+1)*BlockSize]
		if fua {
			copy(d.durable[b*BlockSize:], blk)
			delete(d.dirty, b)
			continue
		}
		d.dirty[b] = append(d.dirty[b][:0], blk...)
	}
	return nil
}

// Flush makes every write so far durable.
func (d *Disk) Flush() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stats.Flushes++
	for b, blk := range d.dirty {
		copy(d.durable[b*BlockSize:], blk)
	}
	clear(d.dirty)
}

// Cut loses the cache: with torn nil every cached block is dropped;
// otherwise each reaches the medium when torn says so (e.g. a coin toss).
// Reads then see the durable content. It returns how many cached blocks
// were dropped and kept.
func (d *Disk) Cut(torn func() bool) (dropped, kept int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	// In block order, so that a seeded rule tears the same way each run.
	for _, b := range slices.Sorted(maps.Keys(d.dirty)) {
		if torn != nil && torn() {
			copy(d.durable[b*BlockSize:], d.dirty[b])
			kept++
			continue
		}
		dropped++
	}
	clear(d.dirty)
	copy(d.cur, d.durable)
	d.stats.DroppedBlocks += dropped
	d.stats.KeptBlocks += kept
	return dropped, kept
}

// Dirty is how many blocks are cached and not yet durable.
func (d *Disk) Dirty() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.dirty)
}

// Stats returns the counts so far.
func (d *Disk) Stats() DiskStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// CoinToss returns a torn-cut rule that keeps each cached block with
// probability 1/2, drawn from rng.
func CoinToss(rng *rand.Rand) func() bool { return func() bool { return rng.IntN(2) == 0 } }
