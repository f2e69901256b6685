// Package admintest holds test helpers for the admin socket and the
// technician CLI: a real outbox file filled with records in every state,
// and a small hand-written fake of the daemon's Backend.
package admintest

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"taxi-agent/internal/admin"
	"taxi-agent/internal/outbox"
	"taxi-agent/internal/punch"
)

// Licences of the fixture's drivers, shown whole by the CLI.
const (
	LicenceA = "42108319880906011X"
	LicenceB = "440300199001011234"
	LicenceC = "44030019851212567X"
	Plate    = "粤B12345"
)

// Fixture ids: what Fill leaves in each record.
const (
	IDDeliveredIn  = 1 // SIGN_IN of LicenceA, delivered
	IDDeliveredOut = 2 // SIGN_OUT of LicenceA, delivered
	IDDead         = 3 // SIGN_IN of LicenceB, dead after 400 PARAM_ERROR
	IDRetrying     = 4 // SIGN_IN of LicenceC, pending after two 503s
	IDPending      = 5 // SIGN_OUT of LicenceC, pending, never tried
)

// DeadRequestID and DeadMessage are WeChat Pay's answer that killed IDDead.
const (
	DeadRequestID = "08F0B6A8BE0610B80418F9B2DB6620E0F90628B0A701-0"
	DeadMessage   = "event_time格式错误"
	RetryRequest  = "08C1D2E3F40610A1B2C3D4E5F6A7-503"
)

// Base is the receipt time of the first fixture record; the others follow
// a minute apart.
var Base = time.Date(2026, 11, 28, 2, 30, 0, 0, time.UTC) // 10:30 in UTC+8

// NewOutbox creates an outbox file in a new temporary directory, fills it
// (see Fill) and closes it. It returns the file's path.
func NewOutbox(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "outbox.db")
	FillFile(t, path)
	return path
}

// FillFile creates the outbox file at path, fills it (see Fill) and closes
// it.
func FillFile(t testing.TB, path string) {
	t.Helper()
	ob, err := outbox.Open(path, outbox.Options{})
	if err != nil {
		t.Fatalf("open outbox: %v", err)
	}
	Fill(t, ob)
	if err := ob.Close(); err != nil {
		t.Fatal(err)
	}
}

// OpenOutbox opens the outbox at path read-write and closes it at cleanup.
func OpenOutbox(t testing.TB, path string) *outbox.Outbox {
	t.Helper()
	ob, err := outbox.Open(path, outbox.Options{})
	if err != nil {
		t.Fatalf("open outbox: %v", err)
	}
	t.Cleanup(func() { ob.Close() })
	return ob
}

// Fill enqueues the five fixture records and takes each to its state
// through the uploader's own calls.
func Fill(t testing.TB, ob *outbox.Outbox) {
	t.Helper()
	ev := func(i int, typ, licence string) outbox.Record {
		at := Base.Add(time.Duration(i) * time.Minute)
		return outbox.Record{
			Event: punch.Event{Type: typ, DriverLicense: licence, PlateNumber: Plate, RegionID: 440300,
				EventTime: at.In(time.FixedZone("UTC+8", 8*3600)).Format("2006-01-02T15:04:05.000-07:00")},
			Identity:   typ + "|" + licence + "|" + at.Format("200601021504"),
			ReceivedAt: at,
			MeterTime:  at.Truncate(time.Minute),
		}
	}
	for i, r := range []outbox.Record{
		ev(0, punch.SignIn, LicenceA), ev(1, punch.SignOut, LicenceA), ev(2, punch.SignIn, LicenceB),
		ev(3, punch.SignIn, LicenceC), ev(4, punch.SignOut, LicenceC),
	} {
		id, dup, err := ob.Enqueue(r)
		if err != nil || dup || id != uint64(i+1) {
			t.Fatalf("enqueue fixture %d: id %d dup %v err %v", i+1, id, dup, err)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("fill outbox: %v", err)
		}
	}
	must(ob.MarkDelivered(IDDeliveredIn, Base.Add(10*time.Minute)))
	must(ob.MarkDelivered(IDDeliveredOut, Base.Add(11*time.Minute)))
	must(ob.DeadLetter(IDDead, outbox.AttemptError{At: Base.Add(12 * time.Minute), Status: 400,
		Code: "PARAM_ERROR", Message: DeadMessage, RequestID: DeadRequestID}, "rejected by WeChat Pay: 400 PARAM_ERROR"))
	for i := range 2 {
		must(ob.RecordFailure(IDRetrying, outbox.AttemptError{At: Base.Add(time.Duration(13+i) * time.Minute),
			Status: 503, Code: "SYSTEM_ERROR", Message: "系统繁忙", RequestID: RetryRequest},
			time.Now().Add(time.Hour)))
	}
}

// Backend is a fake admin.Backend: the outbox is real, the status is what
// StatusFunc says.
type Backend struct {
	Store      admin.OutboxStore
	StatusFunc func(ctx context.Context) (admin.Status, error)

	requeued atomic.Int64
}

var _ admin.Backend = (*Backend)(nil)

// Status calls StatusFunc, filling the outbox part from the store.
func (b *Backend) Status(ctx context.Context) (admin.Status, error) {
	var st admin.Status
	if b.StatusFunc != nil {
		var err error
		if st, err = b.StatusFunc(ctx); err != nil {
			return st, err
		}
	}
	ost, err := b.Store.Stats()
	if err != nil {
		return st, err
	}
	st.Outbox = ost
	return st, nil
}

// Outbox returns the store.
func (b *Backend) Outbox() admin.OutboxStore { return b.Store }

// Requeued counts the calls, as a daemon would wake its uploader.
func (b *Backend) Requeued() { b.requeued.Add(1) }

// RequeuedCalls is how many times Requeued was called.
func (b *Backend) RequeuedCalls() int { return int(b.requeued.Load()) }

// Serve runs the admin server for b on a real unix socket (made with
// admin.Listen, mode 0660) in a new short-named temporary directory, and
// stops it at cleanup. It returns the socket's path.
func Serve(t testing.TB, b admin.Backend, logger *slog.Logger) string {
	t.Helper()
	sock := filepath.Join(ShortTempDir(t), "admin.sock")
	ServeAt(t, sock, b, logger)
	return sock
}

// ServeAt is Serve on the socket path sock.
func ServeAt(t testing.TB, sock string, b admin.Backend, logger *slog.Logger) {
	t.Helper()
	ln, err := admin.Listen(sock)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := admin.NewServer(b, logger)
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
}

// ShortTempDir makes a directory under os.TempDir with a short name (a
// unix socket path must fit in 108 bytes, which t.TempDir's long names can
// exceed), world-traversable so a test child running as another user can
// reach what is inside, and removes it at cleanup.
func ShortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "adm")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
