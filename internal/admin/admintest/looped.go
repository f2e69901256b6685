package admintest

import (
	"encoding/binary"
	"fmt"
	"os"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"taxi-agent/internal/outbox"
	"taxi-agent/internal/punch"
)

// LoopedFile writes the field report's corrupt outbox at path: n pending
// records (3 000 in the report), then the pending bucket's root branch
// page made to point at itself, its own id written at page*4096+40, the
// child pointer of element 1. It returns that page.
func LoopedFile(t testing.TB, path string, n int) uint64 {
	t.Helper()
	ob, err := outbox.Open(path, outbox.Options{})
	if err != nil {
		t.Fatalf("open outbox: %v", err)
	}
	for i := range n {
		at := Base.Add(time.Duration(i) * time.Minute)
		r := outbox.Record{
			Event: punch.Event{Type: punch.SignIn, DriverLicense: LicenceA, PlateNumber: Plate, RegionID: 440300,
				EventTime: at.In(time.FixedZone("UTC+8", 8*3600)).Format("2006-01-02T15:04:05.000-07:00")},
			Identity:   fmt.Sprintf("%s|%s|%d", punch.SignIn, LicenceA, i),
			ReceivedAt: at,
			MeterTime:  at,
		}
		if _, _, err := ob.Enqueue(r); err != nil {
			t.Fatalf("enqueue %d: %v", i, err)
		}
	}
	if err := ob.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var root uint64
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("pending"))
		if b.Stats().BranchPageN == 0 {
			return fmt.Errorf("pending bucket of %d records has no branch page", n)
		}
		root = uint64(b.Root())
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], root)
	if _, err := f.WriteAt(b[:], int64(root)*4096+40); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return root
}
