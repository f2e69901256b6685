package netwatch

import (
	"net"
	"os"
	"sync"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// fakeConn is a conn in memory: it answers dumps with the messages set for
// each type and delivers the notification datagrams the test injects,
// encoded by the rtnetlink library as the kernel would send them.
type fakeConn struct {
	in     chan datagram
	closed chan struct{}
	once   sync.Once

	mu      sync.Mutex
	dumps   map[uint16][]message // answer to RTM_GETLINK, _GETADDR, _GETROUTE
	sent    []uint16             // dump types requested, in order
	dumpErr error                // fails every dump when set
}

type datagram struct {
	msgs []netlink.Message
	err  error
}

var _ conn = (*fakeConn)(nil)

func newFakeConn() *fakeConn {
	return &fakeConn{
		in:     make(chan datagram, 64),
		closed: make(chan struct{}),
		dumps:  map[uint16][]message{},
	}
}

func (f *fakeConn) receive() ([]netlink.Message, error) {
	select {
	case d := <-f.in:
		return d.msgs, d.err
	case <-f.closed:
		return nil, os.ErrClosed
	}
}

func (f *fakeConn) dump(typ uint16) ([]message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dumpErr != nil {
		return nil, f.dumpErr
	}
	f.sent = append(f.sent, typ)
	return append([]message(nil), f.dumps[typ]...), nil
}

func (f *fakeConn) close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

// notify delivers live notifications in one datagram.
func (f *fakeConn) notify(msgs ...message) {
	var d datagram
	for _, m := range msgs {
		d.msgs = append(d.msgs, encode(m))
	}
	f.in <- d
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

// encode is the inverse of decode for the fields message keeps, through the
// library's own encoders.
func encode(m message) netlink.Message {
	var rm interface{ MarshalBinary() ([]byte, error) }
	switch m.Type {
	case unix.RTM_NEWLINK, unix.RTM_DELLINK:
		rm = &rtnetlink.LinkMessage{Index: uint32(m.Index), Flags: m.IfFlags,
			Attributes: &rtnetlink.LinkAttributes{Name: m.Name}}
	case unix.RTM_NEWADDR, unix.RTM_DELADDR:
		rm = &rtnetlink.AddressMessage{Family: m.Family, PrefixLength: m.PrefixLen, Flags: uint8(m.AddrFlags),
			Scope: m.Scope, Index: uint32(m.Index),
			Attributes: &rtnetlink.AddressAttributes{Address: net.IP(m.Addr), Local: net.IP(m.Addr), Label: m.Name, Flags: m.AddrFlags}}
	case unix.RTM_NEWROUTE, unix.RTM_DELROUTE:
		rm = &rtnetlink.RouteMessage{Family: m.Family, DstLength: m.PrefixLen, Scope: m.Scope, Type: m.RouteTyp,
			Table: uint8(min(m.Table, 255)),
			Attributes: rtnetlink.RouteAttributes{Gateway: net.IP(m.Addr), OutIface: uint32(m.Index),
				Priority: m.Priority, Table: m.Table}}
	default:
		panic("encode: unknown message type")
	}
	b, err := rm.MarshalBinary()
	if err != nil {
		panic(err)
	}
	return netlink.Message{Header: netlink.Header{Type: netlink.HeaderType(m.Type)}, Data: b}
}
