package admin

import "errors"

// Sentinel errors of the package. Compare with errors.Is. Errors from the
// outbox (outbox.ErrNotFound, outbox.ErrNotDead, outbox.ErrLocked) cross the
// socket intact: the Client wraps the same sentinels the local file gives.
var (
	// ErrRefused: the daemon refused the peer (SO_PEERCRED): it is neither
	// root, nor the daemon's user, nor in the daemon's group.
	ErrRefused = errors.New("refused by the daemon")
	// ErrNoDaemon: nobody answers on the socket (it does not exist, or it is
	// left over from a daemon that is gone). The CLI falls back to the file.
	ErrNoDaemon = errors.New("daemon not running")
	// ErrSocketInUse: Listen found a live daemon answering on the path.
	ErrSocketInUse = errors.New("socket in use by a running daemon")
	// ErrNotSocket: Listen found something other than a socket at the
	// path and will not delete it.
	ErrNotSocket = errors.New("path exists and is not a socket")
	// ErrBadRequest: the server could not make sense of a request.
	ErrBadRequest = errors.New("bad request")
	// ErrProtocol: the answer from the socket is not what this client
	// understands (a different version of the agent, a truncated stream).
	ErrProtocol = errors.New("unexpected answer from the daemon")
)
