package outbox

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Outbox is the durable queue of events between the meter and the
// uploader. Its methods are safe for concurrent use.
type Outbox struct {
	path string
	opts Options
	tune tuning
	log  *slog.Logger
	db   *bolt.DB

	quarantined  error
	pageSize     int
	reservePages int
	closed       atomic.Bool
	commits      commitWatch

	// enqueuePages and changePages are the most pages one enqueue, and
	// one delivery or other change of a stored record, has allocated
	// since Open: hasRoom sizes its slack and its reserve by them.
	enqueuePages atomic.Int64
	changePages  atomic.Int64

	mu        sync.Mutex // guards the fields below
	lastPrune time.Time
	full      bool
}

// Open opens or creates the outbox at path.
//
// A file that bbolt cannot open, whose structure does not check, whose
// records do not decode or whose schema is unknown is renamed to
// <path>.corrupt-<UTC time> and a fresh outbox is started: Open succeeds
// and Quarantined reports what happened (Open does not log it: the caller
// logs it once, with its context). Errors of the environment
// (permissions, a missing directory, a read-only file system) are returned
// as they are, and a file locked by another process is refused with a
// *LockedError, never moved.
//
// With Options.ReadOnly nothing is created, moved or written: a missing
// file is an error wrapping fs.ErrNotExist and a corrupt one an error
// wrapping ErrCorrupt.
func Open(path string, opts Options) (*Outbox, error) {
	return open(path, opts, defaultTuning)
}

func open(path string, opts Options, t tuning) (*Outbox, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("open outbox %s: %w", path, err)
	}
	o := &Outbox{path: path, opts: opts, tune: t, log: opts.Logger}
	if opts.ReadOnly {
		err = o.openReadOnly()
	} else {
		err = o.openReadWrite()
	}
	if err != nil {
		return nil, err
	}
	o.pageSize = o.db.Info().PageSize
	o.reservePages = reservePages(opts.MaxSize, o.pageSize)
	return o, nil
}

func (o *Outbox) openReadOnly() error {
	fi, err := os.Stat(o.path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("open outbox %s: %w", o.path, fs.ErrNotExist)
	}
	if err != nil {
		return fmt.Errorf("open outbox %s: %w", o.path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("open outbox %s: not a regular file (%s)", o.path, fi.Mode().Type())
	}
	if fi.Size() == 0 {
		return fmt.Errorf("open outbox %s: empty file, never initialised: %w", o.path, fs.ErrNotExist)
	}
	db, err := bolt.Open(o.path, 0o600, o.tune.boltOptions(o.opts))
	if err != nil {
		return o.openError(err)
	}
	fresh, err := guard(func() (bool, error) { return validate(db, o.path, fi.Size()) })
	if err == nil && fresh {
		err = fmt.Errorf("no outbox schema, never initialised: %w", fs.ErrNotExist)
	}
	if err != nil {
		_ = db.Close()
		return fmt.Errorf("open outbox %s: %w", o.path, err)
	}
	o.db = db
	return nil
}

func (o *Outbox) openReadWrite() error {
	fi, err := os.Stat(o.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("open outbox %s: %w", o.path, err)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("open outbox %s: not a regular file (%s)", o.path, fi.Mode().Type())
	case fi.Size() == 0:
		o.log.Warn("outbox file is empty, starting a new one", "path", o.path)
	default:
		if err := o.check(fi.Size()); err != nil {
			return err
		}
	}

	db, err := bolt.Open(o.path, 0o600, o.tune.boltOptions(o.opts))
	if err != nil && isCorruptOpenErr(err) && o.quarantined == nil {
		// The file passed the read-only check but bbolt refused it for
		// writing; it changed under us or the check missed something.
		if qerr := o.quarantine(err); qerr != nil {
			return qerr
		}
		db, err = bolt.Open(o.path, 0o600, o.tune.boltOptions(o.opts))
	}
	if err != nil {
		return o.openError(err)
	}
	db.AllocSize = o.tune.AllocSize
	o.db = db
	if err := o.initSchema(); err != nil {
		_ = db.Close()
		return fmt.Errorf("open outbox %s: %w", o.path, err)
	}
	if _, err := o.Prune(o.opts.Now()); err != nil {
		o.log.Warn("prune delivered records", "err", err)
	}
	return nil
}

// check opens the existing file read-only and validates it, moving it
// aside when it is corrupt.
func (o *Outbox) check(size int64) error {
	db, err := bolt.Open(o.path, 0o600, o.tune.boltOptions(Options{
		LockTimeout: o.opts.LockTimeout, MaxSize: o.opts.MaxSize, ReadOnly: true,
	}))
	if err != nil {
		if !isCorruptOpenErr(err) {
			return o.openError(err)
		}
		return o.quarantine(err)
	}
	_, err = guard(func() (bool, error) { return validate(db, o.path, size) })
	if cerr := db.Close(); cerr != nil && err == nil {
		return fmt.Errorf("open outbox %s: close after check: %w", o.path, cerr)
	}
	if err != nil {
		return o.quarantine(err)
	}
	return nil
}

// openError turns an error of bolt.Open into Open's error.
func (o *Outbox) openError(err error) error {
	if errors.Is(err, berrors.ErrTimeout) {
		return &LockedError{Path: o.path, PID: lockHolder(o.path)}
	}
	if isCorruptOpenErr(err) {
		return fmt.Errorf("open outbox %s: %w: %w", o.path, ErrCorrupt, err)
	}
	return fmt.Errorf("open outbox %s: %w", o.path, err)
}

// isCorruptOpenErr tells an error about the file's content from one of the
// environment (permissions, I/O) or the lock.
func isCorruptOpenErr(err error) bool {
	var pathErr *fs.PathError
	var errno syscall.Errno
	switch {
	case errors.Is(err, berrors.ErrTimeout), errors.As(err, &pathErr), errors.As(err, &errno):
		return false
	default:
		return true
	}
}

// quarantine renames the file to <path>.corrupt-<UTC time> so that a fresh
// one can be started, and records why.
func (o *Outbox) quarantine(cause error) error {
	stamp := o.opts.Now().UTC().Format("20060102T150405Z")
	name := o.path + ".corrupt-" + stamp
	for i := 1; ; i++ {
		if _, err := os.Lstat(name); errors.Is(err, fs.ErrNotExist) {
			break
		}
		name = fmt.Sprintf("%s.corrupt-%s-%d", o.path, stamp, i)
	}
	if err := os.Rename(o.path, name); err != nil {
		return fmt.Errorf("open outbox %s: move corrupt file aside: %w", o.path, err)
	}
	if err := syncDir(o.path); err != nil {
		o.log.Warn("sync directory after moving corrupt outbox aside", "err", err)
	}
	if !errors.Is(cause, ErrCorrupt) {
		cause = fmt.Errorf("%w: %w", ErrCorrupt, cause)
	}
	// Not logged here: the caller logs Quarantined() once, with its context.
	o.quarantined = fmt.Errorf("open outbox %s: moved aside as %s: %w", o.path, name, cause)
	return nil
}

// Quarantined returns nil, or, when Open found the file corrupt and moved
// it aside, an error (wrapping ErrCorrupt) that says where and why. Every
// record of the old file is still in the moved file; none is in the new one.
func (o *Outbox) Quarantined() error { return o.quarantined }

// Path returns the file's path.
func (o *Outbox) Path() string { return o.path }

// Close closes the file. Later calls return nil; other methods return
// ErrClosed.
func (o *Outbox) Close() error {
	if o.closed.Swap(true) {
		return nil
	}
	if err := o.db.Close(); err != nil {
		return fmt.Errorf("close outbox %s: %w", o.path, err)
	}
	return nil
}

// initSchema creates the buckets of a new file and repairs the counters of
// an old one if they disagree with the buckets (they are updated in the
// same transactions, so this only ever happens after a bug).
func (o *Outbox) initSchema() error {
	var fix bool
	err := o.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta) == nil {
			fix = true
			return nil
		}
		bs, err := openBuckets(tx)
		if err != nil {
			return err
		}
		fix = len(bs.repairs()) > 0
		return nil
	})
	if err != nil || !fix {
		return err
	}
	return o.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta) == nil {
			return createSchema(tx)
		}
		bs, err := openBuckets(tx)
		if err != nil {
			return err
		}
		for _, r := range bs.repairs() {
			o.log.Warn("repair outbox counter", "key", string(r.key), "stored", getUint(bs.meta, r.key), "actual", r.value)
			if err := putUint(bs.meta, r.key, r.value); err != nil {
				return err
			}
		}
		return nil
	})
}

func createSchema(tx *bolt.Tx) error {
	names := [][]byte{bucketMeta, bucketIdentity}
	for _, s := range allStates {
		names = append(names, stateBuckets[s])
	}
	for _, name := range names {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return putUint(tx.Bucket(bucketMeta), keySchema, schemaVersion)
}

type repair struct {
	key   []byte
	value uint64
}

// repairs lists the meta values that disagree with the buckets.
func (bs buckets) repairs() []repair {
	var out []repair
	lastID := getUint(bs.meta, keyLastID)
	maxID := lastID
	for _, s := range allStates {
		n := uint64(bs.state[s].Stats().KeyN)
		if n != getUint(bs.meta, counterKeys[s]) {
			out = append(out, repair{counterKeys[s], n})
		}
		if k, _ := bs.state[s].Cursor().Last(); k != nil {
			if id, ok := keyID(k); ok && id > maxID {
				maxID = id
			}
		}
	}
	if maxID != lastID {
		out = append(out, repair{keyLastID, maxID})
	}
	return out
}

func syncDir(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
