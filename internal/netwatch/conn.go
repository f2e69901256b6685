package netwatch

import (
	"errors"

	"github.com/mdlayher/netlink"
)

// conn is the watcher's rtnetlink: a socket subscribed to the link, address
// and route groups, and a second one for dumps, so that a dump reply never
// interleaves with a notification.
type conn interface {
	// receive returns the messages of one notification datagram; an
	// error wrapping errLost when the kernel dropped notifications
	// (ENOBUFS) or a datagram could not be framed.
	receive() ([]netlink.Message, error)
	// dump lists the kernel's links (RTM_GETLINK), addresses
	// (RTM_GETADDR) or routes (RTM_GETROUTE), as messages of the matching
	// RTM_NEW* type.
	dump(typ uint16) ([]message, error)
	// close unblocks a pending receive.
	close() error
}

// errLost reports notifications lost on a receive: the state must be
// resynchronised with a dump.
var errLost = errors.New("netlink notifications lost")
