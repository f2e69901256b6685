package outbox

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// realFile writes an outbox with n records at path, closes it and
// returns the bytes its pages use (the rest of the file is preallocated).
func realFile(t *testing.T, path string, n int) int64 {
	t.Helper()
	o, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		mustEnqueue(t, o, event(i))
	}
	used := mustStats(t, o).UsedSize
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	return used
}

// openQuarantined opens path, expects it moved aside, and checks that the
// fresh outbox works.
func openQuarantined(t *testing.T, path string) *Outbox {
	t.Helper()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	o := mustOpen(t, path, Options{})
	q := o.Quarantined()
	if !errors.Is(q, ErrCorrupt) {
		t.Fatalf("Quarantined() = %v, want ErrCorrupt", q)
	}
	moved := corruptFiles(t, path)
	if len(moved) != 1 || !strings.Contains(q.Error(), moved[0]) {
		t.Fatalf("moved aside: %v; report %q should name it", moved, q)
	}
	after, err := os.ReadFile(moved[0])
	if err != nil || string(after) != string(before) {
		t.Fatalf("the moved file differs from the corrupt one (err %v)", err)
	}
	if s := mustStats(t, o); s.CorruptFiles != 1 || s.Pending != 0 || s.Quarantined == "" {
		t.Fatalf("stats after quarantine %+v", s)
	}
	if id := mustEnqueue(t, o, event(0)); id != 1 {
		t.Fatalf("fresh outbox gave id %d", id)
	}
	return o
}

func TestOpenQuarantinesGarbage(t *testing.T) {
	for _, size := range []int{100, 4096, 3 * 4096, 64 << 10} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "outbox.db")
			garbage := make([]byte, size)
			_, _ = rand.Read(garbage)
			if err := os.WriteFile(path, garbage, 0o600); err != nil {
				t.Fatal(err)
			}
			openQuarantined(t, path)
		})
	}
}

func TestOpenQuarantinesTruncatedFile(t *testing.T) {
	for _, keep := range []int64{1000, 4096, 3 * 4096, -4096} {
		t.Run(fmt.Sprint(keep), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "outbox.db")
			used := realFile(t, path, 150)
			if keep < 0 {
				keep += used // lose the last page in use
			}
			if err := os.Truncate(path, keep); err != nil {
				t.Fatal(err)
			}
			openQuarantined(t, path)
		})
	}
}

func TestOpenQuarantinesGarbagePages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	realFile(t, path, 150)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Keep the two meta pages, scribble over every data page.
	size := fileSize(t, path)
	garbage := make([]byte, size-2*4096)
	_, _ = rand.Read(garbage)
	if _, err := f.WriteAt(garbage, 2*4096); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	openQuarantined(t, path)
}

func TestOpenQuarantinesBadRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	realFile(t, path, 3)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(stateBuckets[Pending]).Put(idKey(2), []byte{recordV1, 2, 1})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	openQuarantined(t, path)
}

func TestOpenQuarantinesUnknownSchema(t *testing.T) {
	for name, setup := range map[string]func(tx *bolt.Tx) error{
		"foreign buckets": func(tx *bolt.Tx) error {
			_, err := tx.CreateBucket([]byte("something-else"))
			return err
		},
		"newer schema": func(tx *bolt.Tx) error {
			if err := createSchema(tx); err != nil {
				return err
			}
			return putUint(tx.Bucket(bucketMeta), keySchema, schemaVersion+1)
		},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "outbox.db")
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(setup); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			openQuarantined(t, path)
		})
	}
}

func TestOpenAcceptsEmptyAndBucketlessFiles(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	bare := filepath.Join(dir, "bare.db")
	db, err := bolt.Open(bare, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{empty, bare} {
		o := mustOpen(t, path, Options{})
		if o.Quarantined() != nil || len(corruptFiles(t, path)) != 0 {
			t.Fatalf("%s: quarantined %v", path, o.Quarantined())
		}
		mustEnqueue(t, o, event(0))
	}
}

func TestOpenRepairsCounters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	realFile(t, path, 5)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if err := putUint(meta, counterKeys[Pending], 99); err != nil {
			return err
		}
		return putUint(meta, keyLastID, 2)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	o := mustOpen(t, path, Options{})
	if s := mustStats(t, o); s.Pending != 5 {
		t.Fatalf("pending %d after repair, want 5", s.Pending)
	}
	if id := mustEnqueue(t, o, event(10)); id != 6 {
		t.Fatalf("next id %d after repair, want 6 (never reuse an id)", id)
	}
}

func TestOpenEnvironmentErrorsAreNotQuarantined(t *testing.T) {
	dir := t.TempDir()
	_, err := Open(filepath.Join(dir, "missing-dir", "outbox.db"), Options{})
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("open in a missing directory: %v", err)
	}
	_, err = Open(dir, Options{}) // a directory, not a file
	if err == nil || errors.Is(err, ErrCorrupt) {
		t.Fatalf("open a directory: %v", err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("the directory was moved: %v", err)
	}
	_, err = Open(filepath.Join(dir, "x.db"), Options{MaxSize: 1000})
	if err == nil {
		t.Fatal("a MaxSize of 1000 bytes was accepted")
	}
}

func TestOpenRefusesLockedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	realFile(t, path, 3)
	cmd, sc, stdin := startChild(t, envHold+"="+path)
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	waitReady(t, sc)

	for _, ro := range []bool{false, true} {
		start := time.Now()
		_, err := Open(path, Options{LockTimeout: 100 * time.Millisecond, ReadOnly: ro})
		var le *LockedError
		if !errors.Is(err, ErrLocked) || !errors.As(err, &le) {
			t.Fatalf("read-only %v: error %v, want ErrLocked", ro, err)
		}
		if le.PID != cmd.Process.Pid {
			t.Fatalf("read-only %v: holder pid %d, want the child's %d", ro, le.PID, cmd.Process.Pid)
		}
		want := fmt.Sprintf("open outbox %s: locked by pid %d: outbox is locked", path, cmd.Process.Pid)
		if err.Error() != want {
			t.Fatalf("error %q, want %q", err, want)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("lock refusal took %v", took)
		}
	}
	if m := corruptFiles(t, path); len(m) != 0 {
		t.Fatalf("a locked file was moved aside: %v", m)
	}

	if err := stdin.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	o := mustOpen(t, path, Options{})
	if s := mustStats(t, o); s.Pending != 3 {
		t.Fatalf("after the holder left: %+v", s)
	}
}

func TestReadOnly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "outbox.db")

	_, err := Open(path, Options{ReadOnly: true})
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Fatalf("read-only open of a missing file: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("read-only open created the file: %v", err)
	}

	realFile(t, path, 4)
	rw := mustOpen(t, path, Options{})
	if err := rw.MarkDelivered(1, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)

	ro := mustOpen(t, path, Options{ReadOnly: true})
	if got := listAll(t, ro, "", 2); len(got) != 4 {
		t.Fatalf("read-only list %v", got)
	}
	if h, ok, err := ro.Head(); err != nil || !ok || h.ID != 2 {
		t.Fatalf("read-only head %d %v %v", h.ID, ok, err)
	}
	if s := mustStats(t, ro); s.Pending != 3 || s.Delivered != 1 {
		t.Fatalf("read-only stats %+v", s)
	}
	// Two technicians may read at once.
	ro2 := mustOpen(t, path, Options{ReadOnly: true})
	mustGet(t, ro2, 1)
	_, _, err = ro.Enqueue(event(9))
	wantErr(t, err, ErrReadOnly)
	wantErr(t, ro.Retry(1), ErrReadOnly)
	wantErr(t, ro.Purge(1), ErrReadOnly)
	_, err = ro.Prune(time.Now())
	wantErr(t, err, ErrReadOnly)
	wantErr(t, ro.MarkDelivered(2, time.Now()), ErrReadOnly)
	_ = ro.Close()
	_ = ro2.Close()
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Fatal("read-only use changed the file")
	}

	// A corrupt file is reported, not moved.
	damageOnPurpose(path)
	if err := os.Truncate(path, fileSize(t, path)/2); err != nil {
		t.Fatal(err)
	}
	_, err = Open(path, Options{ReadOnly: true})
	wantErr(t, err, ErrCorrupt)
	if m := corruptFiles(t, path); len(m) != 0 {
		t.Fatalf("read-only open moved the file: %v", m)
	}
}
