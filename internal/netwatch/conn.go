package netwatch

import "errors"

// conn is one rtnetlink socket subscribed to the watcher's groups.
type conn interface {
	// receive returns one datagram; errLost when the kernel dropped
	// notifications (ENOBUFS) or the datagram did not fit.
	receive() ([]byte, error)
	send(b []byte) error
	// port is the socket's netlink port id, the nlmsg_pid of dump replies.
	port() uint32
	// close unblocks a pending receive.
	close() error
}

// errLost reports notifications lost on a receive: the state must be
// resynchronised with a dump.
var errLost = errors.New("netlink notifications lost")
