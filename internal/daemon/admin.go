package daemon

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"time"

	"taxi-agent/internal/admin"
	"taxi-agent/internal/outbox"
	"taxi-agent/internal/version"
)

var _ admin.Backend = (*Daemon)(nil)

// Status implements admin.Backend. While a commit is stuck it answers
// from memory alone, without the outbox's counts, also when the commit
// becomes stuck while the counts are being read.
func (d *Daemon) Status(ctx context.Context) (admin.Status, error) {
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
	var err error
	st.Outbox, st.StorageStuckSince, err = d.outboxStats(ctx)
	return st, err
}

// stuckPoll is how often a status waiting for the outbox's counts looks
// whether the commit in its way has become stuck.
const stuckPoll = 50 * time.Millisecond

// outboxStats reads the outbox's counts, unless a commit is stuck
// (Outbox.StuckSince) before or while they are read: it then returns when
// the commit began instead. A read waits behind a commit blocked in the
// kernel (bbolt holds its meta lock while it writes the meta page), so a
// status asked in the first outbox.commit_timeout of a frozen file system
// would otherwise wait for the thaw. The read left behind returns with
// the commit.
func (d *Daemon) outboxStats(ctx context.Context) (outbox.Stats, time.Time, error) {
	if since, stuck := d.outbox.StuckSince(); stuck {
		return outbox.Stats{}, since, nil
	}
	type result struct {
		stats outbox.Stats
		err   error
	}
	done := make(chan result, 1)
	go func() {
		s, err := d.outbox.Stats()
		done <- result{s, err}
	}()
	t := time.NewTicker(stuckPoll)
	defer t.Stop()
	for {
		select {
		case r := <-done:
			return r.stats, time.Time{}, r.err
		case <-t.C:
			if since, stuck := d.outbox.StuckSince(); stuck {
				return outbox.Stats{}, since, nil
			}
		case <-ctx.Done():
			return outbox.Stats{}, time.Time{}, ctx.Err()
		}
	}
}

// Requeued implements admin.Backend: a technician moved dead records back
// to pending, so the uploader looks at the head now.
func (d *Daemon) Requeued() { d.uploader.Wake() }

// listenAdmin creates the technician socket, before READY=1: a command
// run as soon as systemd says the agent is up finds it. The socket is a
// convenience: if it cannot be created the agent still delivers, says so,
// and listenAdmin returns nil.
func (d *Daemon) listenAdmin() net.Listener {
	ln, err := admin.Listen(d.cfg.Admin.Socket)
	if err != nil {
		d.log.Error("admin socket unavailable; technician commands will open the outbox file instead once the agent stops", "component", "admin", "err", err)
		return nil
	}
	return ln
}

// serveAdmin serves the technician socket ln (nil: none) until ctx ends.
func (d *Daemon) serveAdmin(ctx context.Context, ln net.Listener) {
	if ln == nil {
		return
	}
	log := d.log
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
