//go:build !linux

package rxstamp

import (
	"net"
	"syscall"
)

// newConn wraps tc without receive times: reads are the TCP connection's.
func newConn(tc *net.TCPConn) (*Conn, error) { return &Conn{TCPConn: tc}, nil }

// enable does nothing: there are no receive times to turn on.
func enable(syscall.Conn) error { return nil }

// waitStamping has nothing to wait for.
func waitStamping() error { return nil }
