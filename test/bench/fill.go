package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"taxi-agent/internal/outbox"
	"taxi-agent/internal/punch"
	"taxi-agent/internal/stamp"
	"taxi-agent/test/harness"
)

// record is event n as the agent would store it: a sign-in or sign-out
// of driver n/2 with the daemon's identity format, boot id and clocks.
func record(n int, now time.Time, bootID string) outbox.Record {
	typ := punch.SignIn
	if n%2 == 1 {
		typ = punch.SignOut
	}
	lic := harness.Licence(n / 2)
	meterTime := now.Add(-time.Duration(n) * time.Minute).Truncate(time.Minute)
	return outbox.Record{
		Event: punch.Event{Type: typ, DriverLicense: lic, PlateNumber: harness.Plate,
			RegionID: harness.RegionID, EventTime: stamp.Format(now)},
		Identity:   fmt.Sprintf("%s|%s|%s|%d", typ, lic, meterTime.In(stamp.Zone).Format("200601021504"), 1000+n/2),
		ReceivedAt: now, MeterTime: meterTime,
		BootID: bootID, Monotonic: time.Duration(n) * time.Second,
	}
}

func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// fillOutbox writes an outbox with n pending events at path. It builds it
// on tmpfs when there is one (an fsync there costs nothing) and copies it
// into place: the agent then reads a file on the disk under test, as it
// would after n events came in one by one.
func fillOutbox(path string, n int, maxSizeMiB int) error {
	build := path
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		tmp, err := os.MkdirTemp("/dev/shm", "bench-fill-")
		if err == nil {
			defer os.RemoveAll(tmp)
			build = filepath.Join(tmp, "outbox.db")
		}
	}
	ob, err := outbox.Open(build, outbox.Options{MaxSize: maxSizeMiB << 20})
	if err != nil {
		return err
	}
	now, boot := time.Now(), bootID()
	for i := range n {
		if _, _, err := ob.Enqueue(record(i, now, boot)); err != nil {
			ob.Close()
			return fmt.Errorf("fill outbox: event %d: %w", i, err)
		}
	}
	if err := ob.Close(); err != nil {
		return err
	}
	if build == path {
		return nil
	}
	return copyFile(build, path)
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// storedRecord returns the bytes the outbox stores for one pending event,
// read back raw from a file fillOutbox made: the value a bare bbolt
// Update writes for the floor.
func storedRecord(path string) ([]byte, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var v []byte
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("pending"))
		if b == nil {
			return fmt.Errorf("no pending bucket in %s", path)
		}
		_, val := b.Cursor().First()
		if val == nil {
			return fmt.Errorf("no pending record in %s", path)
		}
		v = append([]byte(nil), val...)
		return nil
	})
	return v, err
}
