package outbox

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// fuzzBase is a real outbox file the fuzz target mutates: 150 records
// (100 pending, 30 delivered, 20 dead), so that pending, delivered and the
// identity index have branch pages, cut to the pages in use. Regenerate it
// and the seeds with -outbox.gen-fuzz.
const fuzzBase = "testdata/fuzz-base.db"

var flagGenFuzz = flag.Bool("outbox.gen-fuzz", false, "rewrite "+fuzzBase+" and the FuzzValidate seeds")

// A mutation program is a sequence of 12-byte operations on the base
// file: op, page, offset (u16 LE), then 8 bytes of value. Offsets are taken
// modulo the page size and pages modulo the file's pages, so every program
// mutates a page of the file.
const (
	opWrite    = iota // write the value's first 1..8 bytes (op>>2&7 + 1) at the offset
	opPointer         // write a page id, value[0] modulo pages+3 (a few out of bounds), as a u64
	opCopyPage        // copy page value[0] over the page
	opWrite16         // write value[0:2] as a u16 (counts, flags)
	opLen      = 12
)

func mutate(base []byte, prog []byte) []byte {
	const ps = 4096
	data := bytes.Clone(base)
	pages := len(data) / ps
	meta := false
	for ; len(prog) >= opLen; prog = prog[opLen:] {
		op, page := prog[0], int(prog[1])%pages
		off := int(binary.LittleEndian.Uint16(prog[2:])) % ps
		v := prog[4:opLen]
		at := page*ps + off
		meta = meta || page < 2
		switch op % 4 {
		case opWrite:
			n := int(op>>2&7) + 1
			copy(data[at:min(at+n, (page+1)*ps)], v[:n])
		case opPointer:
			if at+8 <= len(data) {
				binary.LittleEndian.PutUint64(data[at:], uint64(int(v[0])%(pages+3)))
			}
		case opCopyPage:
			src := int(v[0]) % pages
			copy(data[page*ps:(page+1)*ps], data[src*ps:(src+1)*ps])
		case opWrite16:
			if at+2 <= len(data) {
				copy(data[at:at+2], v[:2])
			}
		}
	}
	if meta { // let a changed meta page through its checksum
		for p := range 2 {
			m := data[p*ps+pageHeaderSize:]
			h := fnv.New64a()
			h.Write(m[:metaSumLen])
			binary.LittleEndian.PutUint64(m[metaSumLen:], h.Sum64())
		}
	}
	return data
}

// FuzzValidate mutates pages of a real outbox file and opens it read-only,
// as the CLI does and as the daemon does before it opens for writing. The
// validation must return within seconds, must not panic, and when it
// accepts the file, bbolt must then read every bucket and record, pass its
// own check, open the file for writing and commit to it without a panic
// or an error.
func FuzzValidate(f *testing.F) {
	base, err := os.ReadFile(fuzzBase)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, prog []byte) { fuzzBody(t, base, prog) })
}

func fuzzBody(t *testing.T, base, prog []byte) {
	{
		var err error
		data := mutate(base, prog)
		path := filepath.Join(t.TempDir(), "outbox.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			o, err := Open(path, Options{ReadOnly: true})
			if err == nil {
				err = o.Close()
			}
			done <- err
		}()
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("read-only Open did not return within 10 s")
		}
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("read-only Open: %v, want ErrCorrupt", err)
			}
			return
		}
		if err := bboltReadsAll(path); err != nil {
			t.Fatalf("validation accepted the file, but bbolt then failed: %v", err)
		}
		o, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("validation accepted the file, but the read-write Open failed: %v", err)
		}
		defer o.Close()
		if q := o.Quarantined(); q != nil {
			t.Fatalf("validation accepted the file, but the read-write Open moved it aside: %v", q)
		}
		r := event(1000)
		if _, _, err := o.Enqueue(r); err != nil {
			t.Fatalf("validation accepted the file, but Enqueue failed: %v", err)
		}
	}
}

// bboltReadsAll opens path with bbolt alone and reads everything in it:
// every bucket, nested ones too, every key and value, the buckets' stats,
// and bbolt's own check. A panic (a memory fault included) is an error.
func bboltReadsAll(path string) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		var walk func(b *bolt.Bucket) int
		walk = func(b *bolt.Bucket) int {
			n := 0
			_ = b.Stats()
			c := b.Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				n += len(k) + len(v)
				if v == nil {
					if child := b.Bucket(k); child != nil {
						n += walk(child)
					}
				}
			}
			return n
		}
		if err := tx.ForEach(func(_ []byte, b *bolt.Bucket) error { walk(b); return nil }); err != nil {
			return err
		}
		for err := range tx.Check() {
			return err
		}
		return nil
	})
}

// TestGenFuzz rewrites the fuzz base file and the seeds with
// -outbox.gen-fuzz: the field report's self-referencing branch page, a
// two-page cycle through a bucket's root, a child shared by two elements,
// in the pending bucket and in the identity index, and a meta page
// pointing the root at a leaf.
func TestGenFuzz(t *testing.T) {
	if !*flagGenFuzz {
		t.Skip("-outbox.gen-fuzz not set")
	}
	path := filepath.Join(t.TempDir(), "outbox.db")
	o := mustOpen(t, path, Options{})
	for i := range 150 {
		mustEnqueue(t, o, event(i))
	}
	for id := uint64(101); id <= 130; id++ {
		if err := o.MarkDelivered(id, newClock().Now()); err != nil {
			t.Fatal(err)
		}
	}
	for id := uint64(131); id <= 150; id++ {
		if err := o.DeadLetter(id, AttemptError{Status: 400, Code: "PARAM_ERROR"}, "rejected"); err != nil {
			t.Fatal(err)
		}
	}
	used := mustStats(t, o).UsedSize
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data = data[:used]
	if err := os.WriteFile(fuzzBase, data, 0o644); err != nil {
		t.Fatal(err)
	}
	roots := map[string]uint64{}
	db, err := bolt.Open(fuzzBase, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			roots[string(name)] = uint64(b.Root())
			t.Logf("bucket %s: root %d, %+v", name, b.Root(), b.Stats())
			return nil
		})
	})
	db.Close()
	op := func(kind byte, page uint64, off int, v uint64) []byte {
		b := make([]byte, opLen)
		b[0], b[1] = kind, byte(page)
		binary.LittleEndian.PutUint16(b[2:], uint16(off))
		binary.LittleEndian.PutUint64(b[4:], v)
		return b
	}
	child := func(i int) int { return pageHeaderSize + i*pageElementSize + 8 }
	seeds := map[string][]byte{}
	for _, name := range []string{"pending", "identity", "delivered"} {
		root := roots[name]
		p := data[root*4096 : (root+1)*4096]
		if binary.LittleEndian.Uint16(p[8:]) != branchPageFlag {
			t.Fatalf("bucket %s: root %d is not a branch", name, root)
		}
		kid := binary.LittleEndian.Uint64(p[child(0):])
		seeds[name+"-self"] = op(opPointer, root, child(1), root)
		seeds[name+"-shared"] = op(opPointer, root, child(1), kid)
		// root -> kid, and kid (a leaf) made a branch pointing at root
		seeds[name+"-cycle"] = append(op(opWrite16, kid, 8, branchPageFlag), op(opPointer, kid, child(0), root)...)
		// a leaf's first key made empty: bbolt asserts when it reads the page to write
		seeds[name+"-empty-key"] = op(opWrite|3<<2, kid, pageHeaderSize+8, 0)
		// a leaf's first key made the largest: out of order, which bbolt's check
		// reports from a goroutine that goes on reading the file
		pos := pageHeaderSize + int(binary.LittleEndian.Uint32(data[kid*4096+pageHeaderSize+4:]))
		seeds[name+"-key-order"] = op(opWrite, kid, pos, 0xff)
	}
	seeds["meta-root-is-leaf"] = append(op(opPointer, 0, pageHeaderSize+16, roots["pending"]+1),
		op(opPointer, 1, pageHeaderSize+16, roots["pending"]+1)...)
	dir := filepath.Join("testdata", "fuzz", "FuzzValidate")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, prog := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", prog)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
