package netwatch

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// groups are the rtnetlink multicast groups the watcher joins.
const groups = unix.RTMGRP_LINK | unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV6_IFADDR |
	unix.RTMGRP_IPV4_ROUTE | unix.RTMGRP_IPV6_ROUTE

// socketBufLen is the kernel receive buffer asked for, so that a burst of
// notifications (a modem re-attaching) does not overflow.
const socketBufLen = 256 << 10

// rtConn is a conn on github.com/jsimonetti/rtnetlink/v2 and
// github.com/mdlayher/netlink. Both sockets go through the Go runtime's
// poller, so close unblocks receive.
type rtConn struct {
	notify *netlink.Conn
	dumps  *rtnetlink.Conn
}

// dialNetlink opens the two NETLINK_ROUTE sockets in the network namespace
// of the calling thread. The subscribed one is opened first, so that no
// change between the dump and the subscription is missed.
func dialNetlink() (conn, error) {
	n, err := netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{Groups: groups})
	if err != nil {
		return nil, fmt.Errorf("open netlink socket: %w", err)
	}
	// Best effort: the kernel caps it at rmem_max.
	_ = n.SetReadBuffer(socketBufLen)
	d, err := rtnetlink.Dial(nil)
	if err != nil {
		n.Close()
		return nil, fmt.Errorf("open netlink socket: %w", err)
	}
	return &rtConn{notify: n, dumps: d}, nil
}

func (c *rtConn) receive() ([]netlink.Message, error) {
	msgs, err := c.notify.Receive()
	switch {
	case errors.Is(err, unix.ENOBUFS):
		return nil, fmt.Errorf("receive netlink: %w: %w", errLost, err)
	case errors.Is(err, syscall.EINVAL):
		// syscall.ParseNetlinkMessage could not frame the datagram.
		return nil, fmt.Errorf("receive netlink: malformed datagram: %w: %w", errLost, err)
	case err != nil:
		return nil, fmt.Errorf("receive netlink: %w", err)
	}
	return msgs, nil
}

func (c *rtConn) dump(typ uint16) ([]message, error) {
	var out []message
	switch typ {
	case unix.RTM_GETLINK:
		ls, err := c.dumps.Link.List()
		if err != nil {
			return nil, fmt.Errorf("dump links: %w", err)
		}
		for i := range ls {
			out = append(out, fromLink(unix.RTM_NEWLINK, &ls[i]))
		}
	case unix.RTM_GETADDR:
		as, err := c.dumps.Address.List()
		if err != nil {
			return nil, fmt.Errorf("dump addresses: %w", err)
		}
		for i := range as {
			out = append(out, fromAddr(unix.RTM_NEWADDR, &as[i]))
		}
	case unix.RTM_GETROUTE:
		rs, err := c.dumps.Route.List()
		if err != nil {
			return nil, fmt.Errorf("dump routes: %w", err)
		}
		for i := range rs {
			out = append(out, fromRoute(unix.RTM_NEWROUTE, &rs[i]))
		}
	default:
		return nil, fmt.Errorf("dump type %d: not a link, address or route dump", typ)
	}
	return out, nil
}

func (c *rtConn) close() error {
	return errors.Join(c.notify.Close(), c.dumps.Close())
}
