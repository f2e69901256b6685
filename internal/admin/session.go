package admin

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"time"

	"taxi-agent/internal/outbox"
)

// Session is how the CLI reaches the outbox: through the daemon's socket
// when it answers, otherwise by opening the file itself.
type Session struct {
	// Outbox is the daemon's outbox through the socket, or the file.
	Outbox OutboxStore
	// Daemon is the client of the running daemon; nil when it is not
	// running.
	Daemon *Client
	// DaemonPID is the running daemon's pid.
	DaemonPID int
	// NoDaemon says why the daemon was not used (wraps ErrNoDaemon); nil
	// when it is.
	NoDaemon error
	// Quarantined is set when a read-write open found the file corrupt and
	// moved it aside (see outbox.Outbox.Quarantined).
	Quarantined error

	local *outbox.Outbox
}

// Connect reaches the outbox for the CLI. It asks the daemon on socketPath
// first. Only if nobody answers there does it open outboxPath itself, with
// opts (opts.ReadOnly for commands that only look). A missing file is not
// created.
//
// When neither is reachable the error says which and why: a permission
// problem is a *PermissionError naming the group to join; a file locked
// by another process says "daemon not running (no answer on …) and … is
// locked by pid N" and wraps outbox.ErrLocked.
func Connect(ctx context.Context, socketPath, outboxPath string, opts outbox.Options) (*Session, error) {
	c := Dial(socketPath)
	pid, err := c.Ping(ctx)
	if err == nil {
		return &Session{Outbox: c.Outbox(ctx), Daemon: c, DaemonPID: pid}, nil
	}
	c.Close()
	if !errors.Is(err, ErrNoDaemon) {
		return nil, err
	}
	noDaemon := err
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 500 * time.Millisecond
	}
	fi, statErr := os.Stat(outboxPath)
	if statErr != nil {
		return nil, fileError(noDaemon, outboxPath, statErr)
	}
	ob, err := outbox.Open(outboxPath, opts)
	if err != nil {
		return nil, fileError(noDaemon, outboxPath, err)
	}
	if ob.Quarantined() != nil {
		keepOwner(outboxPath, fi)
	}
	return &Session{Outbox: ob, NoDaemon: noDaemon, Quarantined: ob.Quarantined(), local: ob}, nil
}

// keepOwner gives the fresh file that replaced a corrupt one the owner of
// the old one: a technician running as root must not leave the daemon's
// user a file it cannot open.
func keepOwner(path string, old os.FileInfo) {
	st, ok := old.Sys().(*syscall.Stat_t)
	if !ok || os.Geteuid() != 0 {
		return
	}
	_ = os.Chown(path, int(st.Uid), int(st.Gid))
}

// fileError explains why the file could not be opened after the daemon
// did not answer.
func fileError(noDaemon error, path string, err error) error {
	var locked *outbox.LockedError
	switch {
	case isPermission(err):
		return fmt.Errorf("%w and %w", noDaemon, permissionError(path, err))
	case errors.As(err, &locked) && locked.PID > 0:
		return &explained{fmt.Sprintf("%v and %s is locked by pid %d%s", noDaemon, path, locked.PID, processName(locked.PID)),
			[]error{noDaemon, err}}
	case errors.Is(err, outbox.ErrLocked):
		return &explained{fmt.Sprintf("%v and %s is locked by another process", noDaemon, path), []error{noDaemon, err}}
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w and there is no outbox at %s (has the agent run with this config?): %w",
			noDaemon, path, fs.ErrNotExist)
	case errors.Is(err, outbox.ErrCorrupt):
		return &explained{fmt.Sprintf("%v and %v\n"+
			"nothing was changed. To recover, start the agent (systemctl start taxi-agent): it moves the file aside as %s.corrupt-<time> "+
			"and starts a fresh outbox. Keep the moved file for support: the records it holds were not all delivered.",
			noDaemon, err, path), []error{noDaemon, err}}
	}
	return fmt.Errorf("%w and %w", noDaemon, err)
}

// Status is the daemon's status, or, without a daemon, only the outbox
// part (the rest is zero; check s.Daemon).
func (s *Session) Status(ctx context.Context) (Status, error) {
	if s.Daemon != nil {
		return s.Daemon.Status(ctx)
	}
	st, err := s.Outbox.Stats()
	if err != nil {
		return Status{}, fmt.Errorf("read outbox stats: %w", err)
	}
	return Status{Outbox: st}, nil
}

// Close closes the file or the connection.
func (s *Session) Close() error {
	if s.Daemon != nil {
		s.Daemon.Close()
	}
	if s.local != nil {
		return s.local.Close()
	}
	return nil
}

// explained is an error whose message says it all, wrapping the errors it
// explains for errors.Is.
type explained struct {
	msg  string
	errs []error
}

func (e *explained) Error() string   { return e.msg }
func (e *explained) Unwrap() []error { return e.errs }

// processName is " (name)" for a pid, from /proc, or "".
func processName(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return ""
	}
	return " (" + strings.TrimSpace(string(b)) + ")"
}
