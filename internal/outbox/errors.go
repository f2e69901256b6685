package outbox

import (
	"errors"
	"fmt"
)

// The outbox's sentinel errors. Callers test them with errors.Is; every error
// an Outbox method returns wraps at most one of them together with the
// operation that failed.
var (
	// ErrLocked means another live process holds the file's lock: the
	// daemon is running. A *LockedError names it when /proc/locks does.
	ErrLocked = errors.New("outbox is locked")

	// ErrFull means the file has reached Options.MaxSize even after pruning
	// delivered records. Nothing stored was dropped; the event was not
	// stored and the meter must be told so (0xFF).
	ErrFull = errors.New("outbox is full")

	// ErrCorrupt means the file could not be read as an outbox: bbolt
	// refused it, its structure did not check, a record did not decode, or
	// its schema is unknown. A read-write Open moves such a file aside and
	// reports it through Quarantined; a read-only Open returns it.
	ErrCorrupt = errors.New("outbox file is corrupt")

	// ErrNotFound means no record has the id.
	ErrNotFound = errors.New("record not found")

	// ErrNotDead means a technician operation that needs a dead record
	// found the record in another state.
	ErrNotDead = errors.New("record is not dead")

	// ErrNotPending means an uploader operation that needs a pending record
	// found the record in another state.
	ErrNotPending = errors.New("record is not pending")

	// ErrReadOnly means a change was asked of an outbox opened read-only.
	ErrReadOnly = errors.New("outbox is read-only")

	// ErrClosed means the outbox was used after Close.
	ErrClosed = errors.New("outbox is closed")

	// ErrBadState means a state filter other than Pending, Dead, Delivered
	// or "" was given.
	ErrBadState = errors.New("unknown record state")

	// ErrBadEventTime means SetEventTime was given a time that is not in
	// the punch API's layout.
	ErrBadEventTime = errors.New("event time not in 2006-01-02T15:04:05.000+08:00 layout")

	// ErrBadDriver means SetDriver was given a driver the meter's fields
	// cannot carry (see Driver.Check).
	ErrBadDriver = errors.New("driver identity does not fit the meter protocol")
)

// LockedError is the error Open returns when another process holds the
// outbox's lock. It wraps ErrLocked.
type LockedError struct {
	Path string
	PID  int // 0 when the holder could not be found in /proc/locks
}

// Error names the file and, when known, the holder's pid.
func (e *LockedError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("open outbox %s: locked by pid %d: %v", e.Path, e.PID, ErrLocked)
	}
	return fmt.Sprintf("open outbox %s: locked by another process: %v", e.Path, ErrLocked)
}

// Unwrap returns ErrLocked.
func (e *LockedError) Unwrap() error { return ErrLocked }
