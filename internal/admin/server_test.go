package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"taxi-agent/internal/admin"
	"taxi-agent/internal/admin/admintest"
	"taxi-agent/internal/outbox"
	"taxi-agent/internal/testsupport"
)

// logBuffer collects the server's logs; the server logs from its own
// goroutines.
type logBuffer struct{ testsupport.SyncBuffer }

func (b *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(b, nil)) }

// daemon is a daemon-like server in the test: a real outbox file behind
// the fake backend, served on a real socket.
type daemon struct {
	ob      *outbox.Outbox
	sock    string
	logs    *logBuffer
	backend *admintest.Backend
}

func startDaemon(t *testing.T, status func(context.Context) (admin.Status, error)) *daemon {
	t.Helper()
	path := filepath.Join(t.TempDir(), "outbox.db")
	ob := admintest.OpenOutbox(t, path)
	admintest.Fill(t, ob)
	logs := &logBuffer{}
	b := &admintest.Backend{Store: ob, StatusFunc: status}
	sock := admintest.Serve(t, b, logs.logger())
	return &daemon{ob: ob, sock: sock, logs: logs, backend: b}
}

// sameJSON compares values by their JSON form (what crosses the socket).
func sameJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if !bytes.Equal(g, w) {
		t.Errorf("%s differs over the socket:\n got %s\nwant %s", what, g, w)
	}
}

func TestClientReadsThroughTheSocket(t *testing.T) {
	d := startDaemon(t, nil)
	ctx := context.Background()
	c := admin.Dial(d.sock)
	defer c.Close()
	remote := c.Outbox(ctx)

	pid, err := c.Ping(ctx)
	if err != nil || pid != os.Getpid() {
		t.Fatalf("Ping = %d, %v; want %d", pid, err, os.Getpid())
	}

	var ids []uint64
	for after := uint64(0); ; {
		recs, next, err := remote.List("", after, 2)
		must(t, err)
		if len(recs) > 2 {
			t.Fatalf("page of %d records, limit 2", len(recs))
		}
		for _, r := range recs {
			ids = append(ids, r.ID)
			local, err := d.ob.Get(r.ID)
			must(t, err)
			sameJSON(t, "record", r, local)
		}
		if next == 0 {
			break
		}
		after = next
	}
	if want := []uint64{1, 2, 3, 4, 5}; !slices.Equal(ids, want) {
		t.Errorf("paged ids %v, want %v", ids, want)
	}

	dead, _, err := remote.List(outbox.Dead, 0, 0)
	must(t, err)
	if len(dead) != 1 || dead[0].ID != admintest.IDDead {
		t.Fatalf("dead records %v", dead)
	}
	if e := dead[0].LastError; e == nil || e.Status != 400 || e.Code != "PARAM_ERROR" ||
		e.Message != admintest.DeadMessage || e.RequestID != admintest.DeadRequestID {
		t.Errorf("last error lost over the socket: %+v", e)
	}
	if _, _, err := remote.List("sleeping", 0, 10); !errors.Is(err, outbox.ErrBadState) {
		t.Errorf("List of a bad state: %v, want ErrBadState", err)
	}

	_, localErr := d.ob.Get(99)
	_, err = remote.Get(99)
	if !errors.Is(err, outbox.ErrNotFound) || err.Error() != localErr.Error() {
		t.Errorf("Get(99) over the socket: %v; want %v (ErrNotFound)", err, localErr)
	}

	got, err := remote.Stats()
	must(t, err)
	want, err := d.ob.Stats()
	must(t, err)
	if got.Pending != 2 || got.Dead != 1 || got.Delivered != 2 || got.FileSize != want.FileSize ||
		got.OldestPendingAgeSeconds < want.OldestPendingAgeSeconds {
		t.Errorf("stats over the socket %+v, file says %+v", got, want)
	}

	var exported []outbox.Record
	must(t, remote.Export(func(r outbox.Record) error { exported = append(exported, r); return nil }))
	var local []outbox.Record
	must(t, d.ob.Export(func(r outbox.Record) error { local = append(local, r); return nil }))
	sameJSON(t, "export", exported, local)
	if len(exported) != 5 {
		t.Errorf("exported %d records, want 5", len(exported))
	}
}

func TestClientChangesThroughTheSocket(t *testing.T) {
	d := startDaemon(t, nil)
	remote := admin.Dial(d.sock).Outbox(context.Background())

	if err := remote.Retry(admintest.IDRetrying); !errors.Is(err, outbox.ErrNotDead) {
		t.Fatalf("Retry of a pending record: %v, want ErrNotDead", err)
	}
	if err := remote.Purge(admintest.IDDeliveredIn); !errors.Is(err, outbox.ErrNotDead) {
		t.Fatalf("Purge of a delivered record: %v, want ErrNotDead", err)
	}
	if d.backend.RequeuedCalls() != 0 {
		t.Fatalf("refused retries told the daemon %d time(s) that records were requeued", d.backend.RequeuedCalls())
	}
	must(t, remote.Retry(admintest.IDDead))
	if r, _ := d.ob.Get(admintest.IDDead); r.State != outbox.Pending {
		t.Fatalf("after Retry the record is %s", r.State)
	}
	if d.backend.RequeuedCalls() != 1 {
		t.Errorf("after a retry the daemon was told %d time(s) to look at the head", d.backend.RequeuedCalls())
	}
	if !strings.Contains(d.logs.String(), "technician moved a dead record back to pending") ||
		!strings.Contains(d.logs.String(), "peer_uid=0") {
		t.Errorf("retry not logged with who asked:\n%s", d.logs)
	}

	// Dead-letter two records, retry all, dead-letter again, purge one and then all.
	dl := func(id uint64) {
		must(t, d.ob.DeadLetter(id, outbox.AttemptError{Status: 400, Code: "INVALID_REQUEST"}, "test"))
	}
	dl(admintest.IDDead)
	dl(admintest.IDRetrying)
	n, err := remote.RetryAllDead()
	if err != nil || n != 2 || d.backend.RequeuedCalls() != 2 {
		t.Fatalf("RetryAllDead = %d, %v (requeued calls %d); want 2 (2)", n, err, d.backend.RequeuedCalls())
	}
	dl(admintest.IDDead)
	dl(admintest.IDRetrying)
	must(t, remote.Purge(admintest.IDDead))
	if _, err := d.ob.Get(admintest.IDDead); !errors.Is(err, outbox.ErrNotFound) {
		t.Fatalf("purged record still there: %v", err)
	}
	n, err = remote.PurgeAllDead()
	if err != nil || n != 1 {
		t.Fatalf("PurgeAllDead = %d, %v; want 1", n, err)
	}
	st, err := d.ob.Stats()
	must(t, err)
	if st.Dead != 0 || st.Pending != 1 || st.Delivered != 2 {
		t.Errorf("after purges: %+v", st)
	}
}

func TestStatusCrossesTheSocket(t *testing.T) {
	started := time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC)
	want := admin.Status{
		PID:          4242,
		StartedAt:    started,
		Uptime:       admin.Duration(90 * time.Minute),
		Clock:        admin.ClockStatus{Trusted: true, Now: started.Add(90 * time.Minute), TrustedAfter: started.Add(-time.Hour)},
		Connectivity: json.RawMessage(`{"link":"up"}`),
	}
	want.Version.Version = "v0.1.0"
	fillFakeParts(&want)
	d := startDaemon(t, func(context.Context) (admin.Status, error) { return want, nil })
	got, err := admin.Dial(d.sock).Status(context.Background())
	must(t, err)
	want.Outbox, err = d.ob.Stats()
	must(t, err)
	got.Outbox.OldestPendingAge = want.Outbox.OldestPendingAge // not on the wire
	got.Outbox.OldestPendingAgeSeconds = want.Outbox.OldestPendingAgeSeconds
	sameJSON(t, "status", got, want)
	if time.Duration(got.Uptime) != 90*time.Minute {
		t.Errorf("uptime %v", time.Duration(got.Uptime))
	}

	failing := startDaemon(t, func(context.Context) (admin.Status, error) { return admin.Status{}, errors.New("meter link stuck") })
	_, err = admin.Dial(failing.sock).Status(context.Background())
	if err == nil || !strings.Contains(err.Error(), "gather status: meter link stuck") {
		t.Errorf("a failing status: %v", err)
	}
}

// brokenStore fails its export after two records.
type brokenStore struct{ admin.OutboxStore }

func (b brokenStore) Export(fn func(outbox.Record) error) error {
	for i := range 2 {
		if err := fn(outbox.Record{ID: uint64(i + 1)}); err != nil {
			return err
		}
	}
	return errors.New("export: read page: disk I/O error")
}

func TestExportErrorsReachTheClient(t *testing.T) {
	path := admintest.NewOutbox(t)
	ob := admintest.OpenOutbox(t, path)
	sock := admintest.Serve(t, &admintest.Backend{Store: brokenStore{ob}}, nil)
	n := 0
	err := admin.Dial(sock).Outbox(context.Background()).Export(func(outbox.Record) error { n++; return nil })
	if err == nil || !strings.Contains(err.Error(), "disk I/O error") || n != 2 {
		t.Fatalf("export over a failing store: %d records, %v", n, err)
	}

	// A stream that just stops (the daemon died mid-export) is an error too.
	sock = filepath.Join(admintest.ShortTempDir(t), "cut.sock")
	ln, err := net.Listen("unix", sock)
	must(t, err)
	defer ln.Close()
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(`{"record":{"id":1}}` + "\n" + `{"record":{"id":2}}` + "\n"))
	}))
	n = 0
	err = admin.Dial(sock).Outbox(context.Background()).Export(func(outbox.Record) error { n++; return nil })
	if !errors.Is(err, admin.ErrProtocol) || n != 2 {
		t.Fatalf("cut-short export: %d records, %v; want ErrProtocol", n, err)
	}
}

func TestNoDaemon(t *testing.T) {
	dir := admintest.ShortTempDir(t)
	missing := filepath.Join(dir, "missing.sock")
	_, err := admin.Dial(missing).Ping(context.Background())
	if !errors.Is(err, admin.ErrNoDaemon) || err.Error() != "daemon not running (no answer on "+missing+")" {
		t.Errorf("no socket: %v", err)
	}
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	must(t, err)
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := admin.Dial(stale).Ping(context.Background()); !errors.Is(err, admin.ErrNoDaemon) {
		t.Errorf("stale socket: %v, want ErrNoDaemon", err)
	}
}
