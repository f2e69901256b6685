package outbox

import (
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// commitWatch keeps when each commit in flight began, from memory, so
// that a commit stuck in the kernel (a disk that no longer answers, a
// frozen file system) can be seen without touching the file.
type commitWatch struct {
	mu      sync.Mutex
	next    uint64
	started map[uint64]time.Time // commits in flight, queued on bbolt's writer lock included
}

// begin records a commit starting now; the returned func records its end.
func (w *commitWatch) begin() func() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started == nil {
		w.started = make(map[uint64]time.Time)
	}
	w.next++
	n := w.next
	w.started[n] = time.Now()
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.started, n)
	}
}

// oldest returns when the oldest commit in flight began.
func (w *commitWatch) oldest() (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var first time.Time
	for _, t := range w.started {
		if first.IsZero() || t.Before(first) {
			first = t
		}
	}
	return first, !first.IsZero()
}

// update runs fn in a read-write transaction and commits it, as
// bolt.DB.Update does, watched by StuckSince.
func (o *Outbox) update(fn func(*bolt.Tx) error) error {
	defer o.commits.begin()()
	return o.db.Update(fn)
}

// StuckSince reports whether a commit has been in flight for longer than
// Options.CommitTimeout, and if so when it began (wall clock, monotonic
// inside). It reads only memory: it answers while the commit is still
// blocked in the kernel. A commit that returns, however late, clears it.
func (o *Outbox) StuckSince() (since time.Time, stuck bool) {
	t, ok := o.commits.oldest()
	if !ok || time.Since(t) < o.opts.CommitTimeout {
		return time.Time{}, false
	}
	return t, true
}
