package daemon

import (
	"context"
	"errors"
	"net/http"
	"os"
	"time"

	"taxi-agent/internal/admin"
	"taxi-agent/internal/version"
)

var _ admin.Backend = (*Daemon)(nil)

// Status implements admin.Backend. While a commit is stuck it answers
// from memory alone, without the outbox's counts.
func (d *Daemon) Status(context.Context) (admin.Status, error) {
	st := admin.Status{
		Version:      version.Get(),
		PID:          os.Getpid(),
		StartedAt:    d.started,
		Uptime:       admin.Duration(time.Since(d.started)),
		Meter:        d.link.Stats(),
		Held:         d.held.status(),
		Uploader:     d.uploader.Status(),
		Clock:        d.clockStatus(),
		Connectivity: d.conn.status(),
	}
	if q := d.outbox.Quarantined(); q != nil {
		st.Quarantined = q.Error()
	}
	st.CommitTimeout = admin.Duration(d.cfg.Outbox.CommitTimeout)
	if since, stuck := d.outbox.StuckSince(); stuck {
		st.StorageStuckSince = since
		return st, nil
	}
	var err error
	st.Outbox, err = d.outbox.Stats()
	return st, err
}

// Requeued implements admin.Backend: a technician moved dead records back
// to pending, so the uploader looks at the head now.
func (d *Daemon) Requeued() { d.uploader.Wake() }

// serveAdmin serves the technician socket until ctx ends. The socket is a
// convenience: if it cannot be created the agent still delivers, and says so.
func (d *Daemon) serveAdmin(ctx context.Context) {
	log := d.log
	ln, err := admin.Listen(d.cfg.Admin.Socket)
	if err != nil {
		log.Error("admin socket unavailable; technician commands will open the outbox file instead once the agent stops", "component", "admin", "err", err)
		return
	}
	srv := admin.NewServer(d, log)
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(shutdownCtx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("admin socket stopped", "component", "admin", "err", err)
	}
	os.Remove(d.cfg.Admin.Socket)
}

func (d *Daemon) clockStatus() admin.ClockStatus {
	sync := d.clock.SyncState()
	return admin.ClockStatus{
		Trusted: d.clock.Trusted(), Now: d.clock.Now(), TrustedAfter: d.clock.TrustedAfter,
		Synchronized: sync.Synchronized, SyncSource: sync.Source, SyncMaxErrorSecs: sync.MaxError.Seconds(),
		SyncError: sync.Err, MeterDisagreement: d.clock.LastDisagreement(),
	}
}
