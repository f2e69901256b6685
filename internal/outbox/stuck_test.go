package outbox

import (
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"taxi-agent/internal/testsupport"
)

// TestStuckSince blocks a commit in flight (a transaction that does not
// return, where the daemon's test freezes a real file system) and checks
// that StuckSince reports it once CommitTimeout has passed, from memory,
// while other commits queue behind it, and clears when it returns.
func TestStuckSince(t *testing.T) {
	o, _ := openTest(t, Options{CommitTimeout: 300 * time.Millisecond})
	id := mustEnqueue(t, o, event(0))
	if _, stuck := o.StuckSince(); stuck {
		t.Fatal("stuck with no commit in flight")
	}
	release := make(chan struct{})
	entered := make(chan time.Time, 1)
	returned := make(chan error, 2)
	began := time.Now()
	go func() {
		returned <- o.update(func(*bolt.Tx) error { entered <- time.Now(); <-release; return nil })
	}()
	// The commit began between began and its function's start.
	inside := <-entered
	go func() { _, _, err := o.Enqueue(event(1)); returned <- err }() // queued behind it

	// Not stuck before CommitTimeout: asserted only when the call is known
	// to have come in time (a loaded machine may run it later); the commit
	// began after began.
	_, stuck := o.StuckSince()
	if early := time.Since(began); early < o.opts.CommitTimeout && stuck {
		t.Errorf("stuck less than %s after the commit began, before CommitTimeout %s", early, o.opts.CommitTimeout)
	}
	testsupport.WaitFor(t, 10*time.Second, "StuckSince to report the blocked commit", func() bool {
		_, stuck := o.StuckSince()
		return stuck
	})
	since, stuck := o.StuckSince()
	if !stuck || since.Before(began) || since.After(inside) {
		t.Errorf("StuckSince = %v, %v; want true, since the blocked commit began, between %v and %v", since, stuck, began, inside)
	}
	if time.Since(since) < o.opts.CommitTimeout {
		t.Errorf("stuck after %s, before CommitTimeout %s", time.Since(since), o.opts.CommitTimeout)
	}
	if r := mustGet(t, o, id); r.ID != id { // reads go on
		t.Errorf("Get while stuck: %+v", r)
	}
	close(release)
	for range 2 {
		if err := <-returned; err != nil {
			t.Fatal(err)
		}
	}
	if _, stuck := o.StuckSince(); stuck {
		t.Error("still stuck after the commits returned")
	}
	if s := mustStats(t, o); s.Pending != 2 {
		t.Errorf("%d pending after the stuck commit, want 2", s.Pending)
	}
}
