package netwatch

import "errors"

// Sentinel errors of the package. Compare with errors.Is.
var (
	// ErrUnavailable marks why the Watcher is not watching: the rtnetlink
	// socket could not be opened (EPERM, EAFNOSUPPORT, a seccomp filter, a
	// non-Linux system) or failed while in use. Watcher.Err wraps it with the
	// cause; the caller keeps running on its backoff alone.
	ErrUnavailable = errors.New("netlink unavailable")

	// ErrRunning is returned by Run when the Watcher is already running.
	ErrRunning = errors.New("watcher already running")
)
