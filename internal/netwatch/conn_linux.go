package netwatch

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// recvBufLen holds the largest datagram the kernel sends: it sizes dump
// replies to the reader's buffer, capped just below 32 KiB
// (netlink_recvmsg). A longer one would be reported as truncated.
const recvBufLen = 32 << 10

// socketBufLen is the kernel receive buffer asked for, so that a burst of
// notifications (a modem re-attaching) does not overflow.
const socketBufLen = 256 << 10

// netlinkConn is a non-blocking NETLINK_ROUTE socket handed to the Go
// runtime's poller through os.File, so that close unblocks receive.
type netlinkConn struct {
	f   *os.File
	rc  syscall.RawConn
	pid uint32
	buf []byte
}

// dialNetlink opens a NETLINK_ROUTE socket in the network namespace of the
// calling thread and joins the link, address and route groups.
func dialNetlink() (conn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind netlink socket: %w", err)
	}
	// Best effort: RCVBUFFORCE passes rmem_max when privileged.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, socketBufLen) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, socketBufLen)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("read netlink port: %w", err)
	}
	nl, ok := sa.(*unix.SockaddrNetlink)
	if !ok {
		unix.Close(fd)
		return nil, fmt.Errorf("read netlink port: address %T", sa)
	}
	f := os.NewFile(uintptr(fd), "netlink")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("poll netlink socket: %w", err)
	}
	return &netlinkConn{f: f, rc: rc, pid: nl.Pid, buf: make([]byte, recvBufLen)}, nil
}

func (c *netlinkConn) receive() ([]byte, error) {
	var (
		n, flags int
		rerr     error
	)
	err := c.rc.Read(func(fd uintptr) bool {
		n, _, flags, _, rerr = unix.Recvmsg(int(fd), c.buf, nil, 0)
		return !errors.Is(rerr, unix.EAGAIN)
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("receive netlink: %w", err)
	case errors.Is(rerr, unix.ENOBUFS):
		return nil, fmt.Errorf("receive netlink: %w: %w", errLost, rerr)
	case rerr != nil:
		return nil, fmt.Errorf("receive netlink: %w", rerr)
	case flags&unix.MSG_TRUNC != 0:
		return nil, fmt.Errorf("receive netlink: truncated datagram: %w", errLost)
	}
	return append([]byte(nil), c.buf[:n]...), nil
}

func (c *netlinkConn) send(b []byte) error {
	var serr error
	err := c.rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return !errors.Is(serr, unix.EAGAIN)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("send netlink: %w", err)
	}
	return nil
}

func (c *netlinkConn) port() uint32 { return c.pid }

func (c *netlinkConn) close() error { return c.f.Close() }
