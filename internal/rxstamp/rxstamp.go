package rxstamp

import (
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"
)

// Listener accepts connections whose reads record their kernel receive
// times (see Conn).
type Listener struct {
	net.Listener
	err error // why there are no receive times; nil when there are
}

// Listen wraps ln: every TCP connection it accepts is a *Conn. It turns
// receive timestamps on for the listening socket itself, which the
// connections inherit: Linux starts stamping packets a moment after the
// first socket asks (the switch is deferred to a kernel worker), and a
// connection's first request must not be the one that goes unstamped, so
// Listen returns once a probe connection's data comes stamped, within a
// second. Where the kernel (or an emulator) refuses, or does not stamp,
// the listener accepts plain connections and Err says why.
func Listen(ln net.Listener) *Listener {
	l := &Listener{Listener: ln}
	if tl, ok := ln.(*net.TCPListener); ok {
		if l.err = enable(tl); l.err == nil {
			l.err = waitStamping()
		}
	} else {
		l.err = fmt.Errorf("rxstamp: %T is not a TCP listener", ln)
	}
	return l
}

// Err is why the listener's connections carry no receive times, or nil.
func (l *Listener) Err() error { return l.err }

// Accept waits for the next connection and turns on its receive
// timestamps.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil || l.err != nil {
		return c, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	conn, err := newConn(tc)
	if err != nil {
		c.Close()
		return nil, err
	}
	return conn, nil
}

// Conn is an accepted TCP connection that remembers when the kernel
// received the data of its latest read.
type Conn struct {
	*net.TCPConn // SetLinger and the rest; Read is Conn's own

	mu   sync.Mutex
	last time.Time
}

// Received is the kernel's receive time of the last packet whose data the
// latest read returned: for a request read whole, when its last byte
// reached this host. Zero before any data, or where the kernel gives none.
func (c *Conn) Received() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

func (c *Conn) stamp(t time.Time) {
	c.mu.Lock()
	c.last = t
	c.mu.Unlock()
}

// Received is the receive time of c's latest read (Conn.Received), through
// a TLS connection to the TCP one beneath; zero when c is not a *Conn.
func Received(c net.Conn) time.Time {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if rc, ok := c.(*Conn); ok {
		return rc.Received()
	}
	return time.Time{}
}
