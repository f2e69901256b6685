package outbox

import (
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
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
	returned := make(chan error, 2)
	began := time.Now()
	go func() {
		returned <- o.update(func(*bolt.Tx) error { <-release; return nil })
	}()
	go func() { _, _, err := o.Enqueue(event(1)); returned <- err }() // queued behind it

	time.Sleep(100 * time.Millisecond)
	if _, stuck := o.StuckSince(); stuck {
		t.Error("stuck before CommitTimeout")
	}
	time.Sleep(300 * time.Millisecond)
	since, stuck := o.StuckSince()
	if !stuck || since.Before(began) || since.After(began.Add(50*time.Millisecond)) {
		t.Errorf("StuckSince = %v, %v; want true, since the blocked commit began at %v", since, stuck, began)
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
