package outbox

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bulkFill stores n records in state straight into the buckets, without
// an fsync per record, to build large outboxes for benchmarks quickly.
func bulkFill(tb testing.TB, o *Outbox, n int, state State, at time.Time) {
	tb.Helper()
	o.db.NoSync = true
	defer func() { o.db.NoSync = false }()
	for done := 0; done < n; {
		err := o.db.Update(func(tx *bolt.Tx) error {
			bs, err := openBuckets(tx)
			if err != nil {
				return err
			}
			for j := 0; done < n && j < 10000; j, done = j+1, done+1 {
				id := getUint(bs.meta, keyLastID) + 1
				r := event(int(id))
				r.Identity = fmt.Sprintf("bulk|%d", id)
				r.ID, r.State = id, state
				if state == Delivered {
					r.DeliveredAt = at
				}
				if err := bs.put(&r); err != nil {
					return err
				}
				if err := bs.identity.Put([]byte(r.Identity), idKey(id)); err != nil {
					return err
				}
				if err := putUint(bs.meta, keyLastID, id); err != nil {
					return err
				}
				if err := addCount(bs.meta, state, 1); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	if err := o.db.Sync(); err != nil {
		tb.Fatal(err)
	}
}

// writeBytes reads write_bytes from /proc/self/io: bytes this process
// caused to be sent to storage, counted when pages are dirtied.
func writeBytes(tb testing.TB) int64 {
	tb.Helper()
	f, err := os.Open("/proc/self/io")
	if err != nil {
		tb.Skipf("no /proc/self/io: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "write_bytes: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return n
		}
	}
	tb.Skip("no write_bytes in /proc/self/io")
	return 0
}

// BenchmarkEnqueueVsBareUpdate times Enqueue next to a bare bbolt Update
// that puts the same encoded bytes under the next big-endian key, on the
// same disk, interleaved so that both see the same disk weather. It
// reports the ratio against bbolt's default options and against the
// outbox's own options (the cost of the schema alone).
func BenchmarkEnqueueVsBareUpdate(b *testing.B) {
	dir := b.TempDir()
	o := mustOpen(b, filepath.Join(dir, "outbox.db"), Options{})
	bulkFill(b, o, 1000, Delivered, time.Now())
	bare := func(name string, opts *bolt.Options) *bolt.DB {
		db, err := bolt.Open(filepath.Join(dir, name), 0o600, opts)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = db.Close() })
		err = db.Update(func(tx *bolt.Tx) error {
			bk, err := tx.CreateBucket([]byte("q"))
			if err != nil {
				return err
			}
			for i := range 1000 {
				r := event(i)
				if err := bk.Put(idKey(uint64(i+1)), encodeRecord(&r)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		return db
	}
	bareDefault := bare("bare-default.db", nil)
	bareSame := bare("bare-same.db", defaultTuning.boltOptions(o.opts))
	put := func(db *bolt.DB, id uint64, v []byte) {
		err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("q")).Put(idKey(id), v) })
		if err != nil {
			b.Fatal(err)
		}
	}
	var tOutbox, tDefault, tSame time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r := event(i)
		r.Identity = fmt.Sprintf("bench|%d", i)
		stored := r
		stored.ID, stored.State = uint64(1001+i), Pending
		v := encodeRecord(&stored)

		t0 := time.Now()
		put(bareDefault, stored.ID, v)
		t1 := time.Now()
		if _, _, err := o.Enqueue(r); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		put(bareSame, stored.ID, v)
		t3 := time.Now()
		tDefault += t1.Sub(t0)
		tOutbox += t2.Sub(t1)
		tSame += t3.Sub(t2)
	}
	b.ReportMetric(float64(tOutbox.Nanoseconds())/float64(b.N), "enqueue-ns/op")
	b.ReportMetric(float64(tDefault.Nanoseconds())/float64(b.N), "bare-ns/op")
	b.ReportMetric(float64(tOutbox)/float64(tDefault), "x-bare-default")
	b.ReportMetric(float64(tOutbox)/float64(tSame), "x-bare-same-opts")
}

// BenchmarkWriteBytes measures the bytes written per enqueue and per
// delivery for each bbolt tuning, on an outbox holding a month of
// deliveries (2000 records), from /proc/self/io (write_bytes) and from
// bbolt's own count of page writes times the page size.
func BenchmarkWriteBytes(b *testing.B) {
	variants := []struct {
		name string
		t    tuning
	}{
		{"chosen/nofreelistsync/hashmap/4k", defaultTuning},
		{"freelistsync/hashmap/4k", tuning{NoFreelistSync: false, FreelistType: bolt.FreelistMapType, AllocSize: 1 << 20}},
		{"freelistsync/array/4k", tuning{NoFreelistSync: false, FreelistType: bolt.FreelistArrayType, AllocSize: 1 << 20}},
		{"nofreelistsync/hashmap/8k", tuning{NoFreelistSync: true, FreelistType: bolt.FreelistMapType, PageSize: 8192, AllocSize: 1 << 20}},
		{"nofreelistsync/hashmap/16k", tuning{NoFreelistSync: true, FreelistType: bolt.FreelistMapType, PageSize: 16384, AllocSize: 1 << 20}},
		{"nofreelistsync/hashmap/1k", tuning{NoFreelistSync: true, FreelistType: bolt.FreelistMapType, PageSize: 1024, AllocSize: 1 << 20}},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			o, err := open(filepath.Join(b.TempDir(), "outbox.db"), Options{}, v.t)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = o.Close() })
			bulkFill(b, o, 2000, Delivered, time.Now())
			ps := int64(o.db.Info().PageSize)
			var enqIO, delIO, enqPages, delPages int64
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				r := event(i)
				r.Identity = fmt.Sprintf("wb|%d", i)
				w0, p0 := writeBytes(b), boltWrites(o)
				id, _, err := o.Enqueue(r)
				if err != nil {
					b.Fatal(err)
				}
				w1, p1 := writeBytes(b), boltWrites(o)
				if err := o.MarkDelivered(id, time.Now()); err != nil {
					b.Fatal(err)
				}
				w2, p2 := writeBytes(b), boltWrites(o)
				enqIO += w1 - w0
				delIO += w2 - w1
				enqPages += p1 - p0
				delPages += p2 - p1
			}
			n := float64(b.N)
			b.ReportMetric(float64(enqIO)/n, "io-B/enqueue")
			b.ReportMetric(float64(delIO)/n, "io-B/deliver")
			b.ReportMetric(float64(enqPages*ps)/n, "bolt-B/enqueue")
			b.ReportMetric(float64(delPages*ps)/n, "bolt-B/deliver")
		})
	}
}

func boltWrites(o *Outbox) int64 {
	st := o.db.Stats()
	return st.TxStats.GetWrite()
}

// BenchmarkListMemory lists 100 000 pending records page by page and
// reports the live heap (after a forced GC) before the walk, at its
// highest at ten points during it (with the current page still held), and
// after it.
func BenchmarkListMemory(b *testing.B) {
	o := mustOpen(b, filepath.Join(b.TempDir(), "outbox.db"), Options{})
	const total = 100_000
	bulkFill(b, o, total, Pending, time.Time{})
	live := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	for _, page := range []int{DefaultListLimit, MaxListLimit} {
		b.Run(fmt.Sprint("page=", page), func(b *testing.B) {
			before := live()
			var peak uint64
			for b.Loop() {
				n := 0
				var after uint64
				for {
					recs, next, err := o.List(Pending, after, page)
					if err != nil {
						b.Fatal(err)
					}
					n += len(recs)
					if n%(total/10) == 0 {
						peak = max(peak, live())
					}
					runtime.KeepAlive(recs)
					if next == 0 {
						break
					}
					after = next
				}
				if n != total {
					b.Fatalf("listed %d records", n)
				}
			}
			b.ReportMetric(float64(before)/1024, "live-before-KiB")
			b.ReportMetric(float64(peak)/1024, "live-peak-KiB")
			b.ReportMetric(float64(live())/1024, "live-after-KiB")
		})
	}
}

// BenchmarkHead shows that Head and Stats do not walk delivered records:
// their cost barely moves with 100 000 of them.
func BenchmarkHead(b *testing.B) {
	for _, delivered := range []int{0, 100_000} {
		b.Run(fmt.Sprint("delivered=", delivered), func(b *testing.B) {
			o := mustOpen(b, filepath.Join(b.TempDir(), "outbox.db"), Options{})
			bulkFill(b, o, delivered, Delivered, time.Now())
			bulkFill(b, o, 10, Pending, time.Time{})
			var tHead, tStats time.Duration
			for b.Loop() {
				t0 := time.Now()
				if _, ok, err := o.Head(); err != nil || !ok {
					b.Fatal(ok, err)
				}
				t1 := time.Now()
				if _, err := o.Stats(); err != nil {
					b.Fatal(err)
				}
				tHead += t1.Sub(t0)
				tStats += time.Since(t1)
			}
			b.ReportMetric(float64(tHead.Nanoseconds())/float64(b.N), "head-ns/op")
			b.ReportMetric(float64(tStats.Nanoseconds())/float64(b.N), "stats-ns/op")
		})
	}
}

// BenchmarkOpen measures Open (read-only check of every page and record,
// then the read-write open) of an outbox with 100 000 records.
func BenchmarkOpen(b *testing.B) {
	path := filepath.Join(b.TempDir(), "outbox.db")
	o := mustOpen(b, path, Options{})
	bulkFill(b, o, 50_000, Delivered, time.Now())
	bulkFill(b, o, 50_000, Pending, time.Time{})
	if err := o.Close(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		o, err := Open(path, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := o.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(fileSize(b, path))/(1<<20), "file-MiB")
}
