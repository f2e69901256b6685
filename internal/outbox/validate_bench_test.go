package outbox

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BenchmarkValidate measures the validation a read-only Open runs, against
// a floor taken in the same iteration: reading the whole file with one
// os.ReadFile. It reports, for outboxes of 3 000 to 100 000 pending
// records:
//
//	structure-x-read   checkStructure's time / the plain read's
//	open-x-read        a whole read-only Open (structure, every record,
//	                   bbolt's check) / the plain read
//	looped-x-read      a read-only Open of the same file with the pending
//	                   root pointing at itself (refused) / the plain read
//	structure-alloc/file, open-alloc/file, looped-alloc/file
//	                   heap bytes allocated / file bytes (the plain read
//	                   allocates 1.0)
func BenchmarkValidate(b *testing.B) {
	for _, n := range []int{3_000, 30_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			dir := b.TempDir()
			path := filepath.Join(dir, "outbox.db")
			o := mustOpen(b, path, Options{})
			bulkFill(b, o, n, Pending, time.Time{})
			if err := o.Close(); err != nil {
				b.Fatal(err)
			}
			looped := filepath.Join(dir, "looped.db")
			data, err := os.ReadFile(path)
			if err != nil {
				b.Fatal(err)
			}
			root := pendingRoot(b, path)
			putPageID(data, root, root)
			if err := os.WriteFile(looped, data, 0o600); err != nil {
				b.Fatal(err)
			}
			size := float64(len(data))

			var read, structure, open, loop time.Duration
			var aStructure, aOpen, aLoop uint64
			var ms runtime.MemStats
			measure := func(fn func()) (time.Duration, uint64) {
				runtime.ReadMemStats(&ms)
				before := ms.TotalAlloc
				start := time.Now()
				fn()
				d := time.Since(start)
				runtime.ReadMemStats(&ms)
				return d, ms.TotalAlloc - before
			}
			for b.Loop() {
				d, _ := measure(func() {
					if _, err := os.ReadFile(path); err != nil {
						b.Fatal(err)
					}
				})
				read += d
				d, a := measure(func() {
					f, err := os.Open(path)
					if err != nil {
						b.Fatal(err)
					}
					defer f.Close()
					if _, err := checkStructure(f, int64(size)); err != nil {
						b.Fatal(err)
					}
				})
				structure, aStructure = structure+d, aStructure+a
				d, a = measure(func() {
					o, err := Open(path, Options{ReadOnly: true})
					if err != nil {
						b.Fatal(err)
					}
					o.Close()
				})
				open, aOpen = open+d, aOpen+a
				d, a = measure(func() {
					if _, err := Open(looped, Options{ReadOnly: true}); err == nil {
						b.Fatal("looped file accepted")
					}
				})
				loop, aLoop = loop+d, aLoop+a
			}
			runs := float64(b.N)
			b.ReportMetric(size/(1<<20), "file-MiB")
			b.ReportMetric(float64(read.Microseconds())/runs, "read-µs")
			b.ReportMetric(float64(structure)/float64(read), "structure-x-read")
			b.ReportMetric(float64(open)/float64(read), "open-x-read")
			b.ReportMetric(float64(loop)/float64(read), "looped-x-read")
			b.ReportMetric(float64(aStructure)/runs/size, "structure-alloc/file")
			b.ReportMetric(float64(aOpen)/runs/size, "open-alloc/file")
			b.ReportMetric(float64(aLoop)/runs/size, "looped-alloc/file")
		})
	}
}

func pendingRoot(tb testing.TB, path string) uint64 {
	tb.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var root uint64
	db.View(func(tx *bolt.Tx) error { root = uint64(tx.Bucket(stateBuckets[Pending]).Root()); return nil })
	return root
}

// putPageID writes id as the child pointer of element 1 of page p, as the
// field report did.
func putPageID(data []byte, p, id uint64) {
	off := p*4096 + pageHeaderSize + pageElementSize + 8
	for i := range 8 {
		data[off+uint64(i)] = byte(id >> (8 * i))
	}
}
