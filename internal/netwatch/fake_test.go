package netwatch

import (
	"os"
	"sync"
)

// fakeConn is a conn in memory: it answers dump requests with the messages
// set for each type and delivers datagrams the test injects.
type fakeConn struct {
	pid    uint32
	in     chan datagram
	closed chan struct{}
	once   sync.Once

	mu      sync.Mutex
	dumps   map[uint16][]message // reply to RTM_GETLINK, _GETADDR, _GETROUTE
	sent    []uint16             // dump types requested, in order
	sendErr error                // fails every send when set
}

type datagram struct {
	b   []byte
	err error
}

var _ conn = (*fakeConn)(nil)

func newFakeConn() *fakeConn {
	return &fakeConn{
		pid:    4242,
		in:     make(chan datagram, 64),
		closed: make(chan struct{}),
		dumps:  map[uint16][]message{},
	}
}

func (f *fakeConn) receive() ([]byte, error) {
	select {
	case d := <-f.in:
		return d.b, d.err
	case <-f.closed:
		return nil, os.ErrClosed
	}
}

// send answers a dump request in one datagram: the set messages, then DONE.
func (f *fakeConn) send(b []byte) error {
	typ, seq := order.Uint16(b[4:]), order.Uint32(b[8:])
	f.mu.Lock()
	if f.sendErr != nil {
		defer f.mu.Unlock()
		return f.sendErr
	}
	f.sent = append(f.sent, typ)
	var reply []byte
	for _, m := range append(f.dumps[typ], message{Type: nlmsgDone}) {
		m.Pid, m.Seq, m.Flags = f.pid, seq, 0x2 // NLM_F_MULTI
		reply = append(reply, encodeMessage(m)...)
	}
	f.mu.Unlock()
	f.in <- datagram{b: reply}
	return nil
}

func (f *fakeConn) port() uint32 { return f.pid }

func (f *fakeConn) close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

// notify delivers live notifications (nlmsg_pid 0) in one datagram.
func (f *fakeConn) notify(msgs ...message) {
	var b []byte
	for _, m := range msgs {
		b = append(b, encodeMessage(m)...)
	}
	f.in <- datagram{b: b}
}

func (f *fakeConn) setDump(typ uint16, msgs ...message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dumps[typ] = msgs
}

func (f *fakeConn) requests() []uint16 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]uint16(nil), f.sent...)
}
