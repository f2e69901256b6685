//go:build !linux

package rxstamp

import (
	"errors"
	"net"
	"syscall"
)

// newConn wraps tc without receive times: reads are the TCP connection's.
func newConn(tc *net.TCPConn) (*Conn, error) { return &Conn{TCPConn: tc}, nil }

// enable refuses: receive times are read on Linux only.
func enable(syscall.Conn) error { return errors.New("rxstamp: receive times are read on Linux only") }

// waitStamping has nothing to wait for.
func waitStamping() error { return nil }
