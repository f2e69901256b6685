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

	// ErrShortHeader: fewer bytes remain than a netlink message header (16).
	ErrShortHeader = errors.New("short netlink header")
	// ErrBadLength: a header's nlmsg_len is below 16 or beyond the datagram.
	ErrBadLength = errors.New("bad netlink message length")
	// ErrShortBody: a message is shorter than the fixed struct of its type
	// (ifinfomsg 16, ifaddrmsg 8, rtmsg 12, nlmsgerr 4 bytes).
	ErrShortBody = errors.New("short netlink message body")
	// ErrBadAttribute: an attribute's rta_len is below 4 or beyond its message.
	ErrBadAttribute = errors.New("bad netlink attribute")
)
