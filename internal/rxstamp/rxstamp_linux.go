package rxstamp

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func newConn(tc *net.TCPConn) (*Conn, error) {
	if err := enable(tc); err != nil {
		return nil, err
	}
	return &Conn{TCPConn: tc}, nil
}

// enable sets SO_TIMESTAMP on the socket of c: microseconds are plenty
// for counting requests per second, and emulators such as qemu-user pass
// its struct timeval through, which they do not for SO_TIMESTAMPNS.
func enable(c syscall.Conn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("rxstamp: %w", err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMP, 1)
	}); err != nil {
		return fmt.Errorf("rxstamp: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("rxstamp: setsockopt SO_TIMESTAMP: %w", serr)
	}
	return nil
}

// oobSize holds one SCM_TIMESTAMP message with room.
var oobSize = unix.CmsgSpace(int(unsafe.Sizeof(unix.Timeval{}))) * 2

// Read reads with recvmsg and keeps the receive time that comes with the
// data. Deadlines and Close work as on the TCP connection.
func (c *Conn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	raw, err := c.TCPConn.SyscallConn()
	if err != nil {
		return 0, err
	}
	oob := make([]byte, oobSize)
	var n, oobn int
	var rerr error
	err = raw.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), b, oob, 0)
		return !errors.Is(rerr, unix.EAGAIN) && !errors.Is(rerr, unix.EINTR)
	})
	switch {
	case err != nil:
		return 0, err
	case rerr != nil:
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("recvmsg", rerr)}
	case n == 0:
		return 0, io.EOF
	}
	if t, ok := parseStamp(oob[:oobn]); ok {
		c.stamp(t)
	}
	return n, nil
}

// parseStamp finds the SCM_TIMESTAMP message in oob.
func parseStamp(oob []byte) (time.Time, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}, false
	}
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET || m.Header.Type != unix.SCM_TIMESTAMP {
			continue
		}
		if len(m.Data) < int(unsafe.Sizeof(unix.Timeval{})) {
			continue
		}
		tv := *(*unix.Timeval)(unsafe.Pointer(&m.Data[0]))
		return time.Unix(tv.Unix()), true
	}
	return time.Time{}, false
}

// waitStamping returns once TCP data sent over loopback comes back with a
// receive time, trying every few milliseconds for a second.
func waitStamping() error {
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return fmt.Errorf("rxstamp: probe: %w", err)
	}
	defer ln.Close()
	if err := enable(ln); err != nil {
		return err
	}
	client, err := net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		return fmt.Errorf("rxstamp: probe: %w", err)
	}
	defer client.Close()
	tc, err := ln.AcceptTCP()
	if err != nil {
		return fmt.Errorf("rxstamp: probe: %w", err)
	}
	c, err := newConn(tc)
	if err != nil {
		tc.Close()
		return err
	}
	defer c.Close()
	deadline := time.Now().Add(time.Second)
	buf := make([]byte, 1)
	for {
		if _, err := client.Write(buf); err != nil {
			return fmt.Errorf("rxstamp: probe: %w", err)
		}
		if _, err := c.Read(buf); err != nil {
			return fmt.Errorf("rxstamp: probe: %w", err)
		}
		if !c.Received().IsZero() {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("rxstamp: the kernel does not stamp received TCP data")
		}
		time.Sleep(2 * time.Millisecond)
	}
}
