package outbox

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"taxi-agent/internal/testsupport"
)

// envOpen makes the test binary a child that opens the outbox at the path
// it names (read-only when envOpenRO is set) and prints an openResult:
// a structure that loops would hang the test process itself.
const (
	envOpen   = "OUTBOX_TEST_OPEN"
	envOpenRO = "OUTBOX_TEST_OPEN_RO"
)

type openResult struct {
	Elapsed     time.Duration
	AllocBytes  uint64 // heap bytes allocated by Open: more than its peak
	Err         string // Open's error
	Page        uint64 // the page a *PageError names
	Quarantined string
}

func openChild(path string, readOnly bool) int {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	start := time.Now()
	o, err := Open(path, Options{ReadOnly: readOnly})
	res := openResult{Elapsed: time.Since(start)}
	runtime.ReadMemStats(&ms)
	res.AllocBytes = ms.TotalAlloc - before
	if err != nil {
		res.Err = err.Error()
		var pe *PageError
		if errors.As(err, &pe) {
			res.Page = pe.Page
		}
	} else {
		if q := o.Quarantined(); q != nil {
			res.Quarantined = q.Error()
			var pe *PageError
			if errors.As(q, &pe) {
				res.Page = pe.Page
			}
		}
		o.Close()
	}
	json.NewEncoder(os.Stdout).Encode(res)
	return 0
}

// openInChild opens path in a child process, killed if it has not
// answered within limit.
func openInChild(t *testing.T, path string, readOnly bool, limit time.Duration) openResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := testsupport.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envOpen+"="+path)
	if readOnly {
		cmd.Env = append(cmd.Env, envOpenRO+"=1")
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if ctx.Err() != nil {
		t.Fatalf("Open(%s, ReadOnly %v) did not return within %v", filepath.Base(path), readOnly, limit)
	}
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	var res openResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("child said %q: %v", out, err)
	}
	return res
}

// bucketPages returns the root page of bucket name and the children of
// that root, which must be a branch whose children are branches too.
func bucketPages(t *testing.T, path string, name []byte) (root uint64, children []uint64) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(name)
		if st := b.Stats(); st.Depth < 3 {
			return fmt.Errorf("bucket %s is %d deep, want at least 3", name, st.Depth)
		}
		root = uint64(b.Root())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	p := readPage(t, path, root)
	for i := range int(binary.LittleEndian.Uint16(p[10:])) {
		children = append(children, binary.LittleEndian.Uint64(p[pageHeaderSize+i*pageElementSize+8:]))
	}
	return root, children
}

func readPage(t *testing.T, path string, id uint64) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := make([]byte, 4096)
	if _, err := f.ReadAt(p, int64(id)*4096); err != nil {
		t.Fatal(err)
	}
	return p
}

// setChild points element i of branch page id at child, as a bad write
// would: the field report wrote a page's own id at page*4096+40, the child
// pointer of element 1.
func setChild(t *testing.T, path string, id uint64, i int, child uint64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], child)
	if _, err := f.WriteAt(b[:], int64(id)*4096+pageHeaderSize+int64(i)*pageElementSize+8); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// loopFile is an outbox of 3 000 pending records, as in the field report,
// whose bucket's tree is then broken by how.
func loopFile(t *testing.T, bucket []byte, how string) (path string, page uint64) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "outbox.db")
	o, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3000 {
		r := event(i)
		r.Identity = fmt.Sprintf("%s|%d", r.Identity, i)
		mustEnqueue(t, o, r)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	root, kids := bucketPages(t, path, bucket)
	switch how {
	case "self": // the field report: element 1 of the root points at the root
		setChild(t, path, root, 1, root)
		return path, root
	case "cycle": // root -> child -> root
		setChild(t, path, kids[0], 1, root)
		return path, kids[0]
	case "shared": // two elements of the root share a child
		setChild(t, path, root, 1, kids[0])
		return path, root
	}
	t.Fatalf("unknown corruption %q", how)
	return
}

// TestOpenStopsAtLoops covers the field report (a pending root branch
// pointing at itself, which made Open loop with memory growing without
// bound) and its class: a two-page cycle and a child shared by two
// parents, in the pending bucket and in the identity index. Each file is
// moved aside within 2 s, with less than twice its size allocated, and a
// read-only open (the CLI's) fails naming the page instead of hanging.
func TestOpenStopsAtLoops(t *testing.T) {
	for _, bucket := range [][]byte{stateBuckets[Pending], bucketIdentity} {
		for _, how := range []string{"self", "cycle", "shared"} {
			t.Run(string(bucket)+"/"+how, func(t *testing.T) {
				t.Parallel()
				path, page := loopFile(t, bucket, how)
				size := fileSize(t, path)

				ro := openInChild(t, path, true, 10*time.Second)
				if !strings.Contains(ro.Err, ErrCorrupt.Error()) || ro.Page != page {
					t.Errorf("read-only open: error %q naming page %d, want ErrCorrupt naming page %d", ro.Err, ro.Page, page)
				}
				if len(corruptFiles(t, path)) != 0 {
					t.Fatal("a read-only open moved the file")
				}

				rw := openInChild(t, path, false, 10*time.Second)
				t.Logf("moved aside in %v, %d bytes allocated for a %d-byte file: %s", rw.Elapsed, rw.AllocBytes, size, rw.Quarantined)
				if rw.Err != "" || rw.Page != page || len(corruptFiles(t, path)) != 1 {
					t.Fatalf("read-write open: error %q, quarantined %q (page %d), want page %d moved aside", rw.Err, rw.Quarantined, rw.Page, page)
				}
				if rw.Elapsed > 2*time.Second {
					t.Errorf("moved aside after %v, want within 2 s", rw.Elapsed)
				}
				if rw.AllocBytes >= 2*uint64(size) {
					t.Errorf("allocated %d bytes, want under twice the file's %d", rw.AllocBytes, size)
				}
			})
		}
	}
}

// TestCheckStructureNamesThePage checks the faults the loop tests do not
// reach, each on a real file: the error names the page and what is wrong.
func TestCheckStructureNamesThePage(t *testing.T) {
	base := filepath.Join(t.TempDir(), "base.db")
	realFile(t, base, 400)
	root, _ := func() (uint64, error) {
		db, err := bolt.Open(base, 0o600, &bolt.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var r uint64
		db.View(func(tx *bolt.Tx) error { r = uint64(tx.Bucket(stateBuckets[Pending]).Root()); return nil })
		return r, nil
	}()
	le := binary.LittleEndian
	for _, c := range []struct {
		name   string
		mutate func(p []byte) // the pending bucket's root page
		want   string
	}{
		{"out of bounds", func(p []byte) { le.PutUint64(p[pageHeaderSize+8:], 1<<40) }, "outside"},
		{"meta page child", func(p []byte) { le.PutUint64(p[pageHeaderSize+8:], 1) }, "outside"},
		{"wrong id", func(p []byte) { le.PutUint64(p, 7) }, "identifies itself as page 7"},
		{"wrong flags", func(p []byte) { le.PutUint16(p[8:], metaPageFlag) }, "neither branch nor leaf"},
		{"too many elements", func(p []byte) { le.PutUint16(p[10:], 300) }, "do not fit"},
		{"empty branch", func(p []byte) { le.PutUint16(p[10:], 0) }, "branch page without elements"},
		{"key beyond page", func(p []byte) { le.PutUint32(p[pageHeaderSize+4:], 5000) }, "beyond the page"},
		{"overflow past end", func(p []byte) { le.PutUint32(p[12:], 1<<30) }, "overflow pages run past"},
	} {
		t.Run(c.name, func(t *testing.T) {
			data, err := os.ReadFile(base)
			if err != nil {
				t.Fatal(err)
			}
			c.mutate(data[root*4096 : (root+1)*4096])
			path := filepath.Join(t.TempDir(), "outbox.db")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			f, _ := os.Open(path)
			defer f.Close()
			_, err = checkStructure(f, int64(len(data)))
			var pe *PageError
			if !errors.As(err, &pe) || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("checkStructure: %v, want a PageError saying %q", err, c.want)
			}
			if _, err := Open(path, Options{ReadOnly: true}); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("read-only Open: %v, want ErrCorrupt", err)
			}
		})
	}
}
