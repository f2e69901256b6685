package outbox

import (
	"fmt"
	"log/slog"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Defaults for the zero values of Options.
const (
	DefaultLockTimeout = time.Second
	DefaultMaxSize     = 64 << 20
	DefaultRetention   = 30 * 24 * time.Hour

	// DefaultCommitTimeout is well under the unit's WatchdogSec (30 s):
	// a healthy commit on a terminal's flash takes milliseconds.
	DefaultCommitTimeout = 10 * time.Second

	// MinMaxSize is the smallest MaxSize Open accepts: below it the
	// reserve kept for the uploader would leave no room for events.
	MinMaxSize = 256 << 10
)

// Options configure Open. The zero value is usable.
type Options struct {
	// LockTimeout bounds the wait for the file's lock (default 1s). A file
	// still locked after it is refused with ErrLocked.
	LockTimeout time.Duration

	// MaxSize bounds the data file in bytes (default 64 MiB). It is passed
	// to bbolt as Options.MaxSize; Enqueue stops short of it so that the
	// uploader and the technician always have room to deliver, dead-letter
	// and prune.
	MaxSize int

	// Retention is how long delivered records are kept for audit and for
	// de-duplication of re-sent frames (default 30 days).
	Retention time.Duration

	// ReadOnly opens the file without writing to it, for the technician
	// CLI while the daemon is stopped. A missing or corrupt file is an
	// error; nothing is created or moved.
	ReadOnly bool

	// CommitTimeout is how long a commit may stay in flight before
	// StuckSince reports the storage stuck (default 10 s).
	CommitTimeout time.Duration

	// Now is the clock (default time.Now).
	Now func() time.Time

	// Logger receives the outbox's logs (default: discarded).
	Logger *slog.Logger
}

func (o Options) withDefaults() (Options, error) {
	if o.LockTimeout <= 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.MaxSize == 0 {
		o.MaxSize = DefaultMaxSize
	}
	if o.MaxSize < MinMaxSize {
		return o, fmt.Errorf("check options: max size %d below %d bytes", o.MaxSize, MinMaxSize)
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.CommitTimeout <= 0 {
		o.CommitTimeout = DefaultCommitTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Logger = o.Logger.With("component", "outbox")
	return o, nil
}

// tuning is the part of the bbolt configuration the outbox chooses itself.
// The values in defaultTuning were chosen with the measurements in
// README.md; the benchmarks compare the alternatives.
type tuning struct {
	NoFreelistSync bool
	FreelistType   bolt.FreelistType
	PageSize       int // 0: the OS page size
	AllocSize      int // growth step of the file once past it
}

var defaultTuning = tuning{
	NoFreelistSync: true,
	FreelistType:   bolt.FreelistMapType,
	AllocSize:      1 << 20,
}

func (t tuning) boltOptions(o Options) *bolt.Options {
	return &bolt.Options{
		Timeout:        o.LockTimeout,
		NoFreelistSync: t.NoFreelistSync,
		FreelistType:   t.FreelistType,
		PageSize:       t.PageSize,
		MaxSize:        o.MaxSize,
		ReadOnly:       o.ReadOnly,
	}
}
