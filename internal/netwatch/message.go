package netwatch

import (
	"encoding/binary"
	"fmt"
)

// Wire constants of rtnetlink (linux/netlink.h, linux/rtnetlink.h,
// linux/if_addr.h, linux/if.h). Kept here so the parser is pure and builds
// on every system.
const (
	nlmsgHdrLen = 16 // struct nlmsghdr
	ifinfoLen   = 16 // struct ifinfomsg
	ifaddrLen   = 8  // struct ifaddrmsg
	rtmsgLen    = 12 // struct rtmsg
	rtattrLen   = 4  // struct rtattr

	nlmsgError = 2 // NLMSG_ERROR
	nlmsgDone  = 3 // NLMSG_DONE

	rtmNewLink  = 16 // RTM_NEWLINK
	rtmDelLink  = 17 // RTM_DELLINK
	rtmGetLink  = 18 // RTM_GETLINK
	rtmNewAddr  = 20 // RTM_NEWADDR
	rtmDelAddr  = 21 // RTM_DELADDR
	rtmGetAddr  = 22 // RTM_GETADDR
	rtmNewRoute = 24 // RTM_NEWROUTE
	rtmDelRoute = 25 // RTM_DELROUTE
	rtmGetRoute = 26 // RTM_GETROUTE

	nlmFRequest = 0x1   // NLM_F_REQUEST
	nlmFDump    = 0x300 // NLM_F_ROOT|NLM_F_MATCH

	iflaIfname = 3 // IFLA_IFNAME

	ifaAddress = 1 // IFA_ADDRESS
	ifaLocal   = 2 // IFA_LOCAL
	ifaLabel   = 3 // IFA_LABEL
	ifaFlags   = 8 // IFA_FLAGS (u32, supersedes ifa_flags)

	rtaOIF      = 4  // RTA_OIF
	rtaGateway  = 5  // RTA_GATEWAY
	rtaPriority = 6  // RTA_PRIORITY
	rtaTable    = 15 // RTA_TABLE

	iffUp       = 0x1  // IFF_UP
	iffLoopback = 0x8  // IFF_LOOPBACK
	iffRunning  = 0x40 // IFF_RUNNING

	ifaFDADFailed = 0x08 // IFA_F_DADFAILED
	ifaFTentative = 0x40 // IFA_F_TENTATIVE

	rtScopeUniverse = 0   // RT_SCOPE_UNIVERSE
	rtTableMain     = 254 // RT_TABLE_MAIN
	rtnUnicast      = 1   // RTN_UNICAST

	afInet  = 2  // AF_INET
	afInet6 = 10 // AF_INET6

	// Multicast groups (RTMGRP_*) the watcher joins.
	groups = 0x1 | 0x10 | 0x100 | 0x40 | 0x400 // LINK, IPV4_IFADDR, IPV6_IFADDR, IPV4_ROUTE, IPV6_ROUTE
)

// message is the part of one rtnetlink message the watcher uses. Fields that
// do not apply to Type stay zero.
type message struct {
	Type  uint16 // nlmsg_type
	Flags uint16 // nlmsg_flags
	Seq   uint32 // nlmsg_seq
	Pid   uint32 // nlmsg_pid

	Errno int32 // NLMSG_ERROR: negative errno, 0 for an ack

	Index   int32  // ifi_index, ifa_index, or RTA_OIF
	Name    string // IFLA_IFNAME, or IFA_LABEL
	IfFlags uint32 // ifi_flags

	Family    uint8  // ifa_family or rtm_family
	PrefixLen uint8  // ifa_prefixlen or rtm_dst_len
	Scope     uint8  // ifa_scope or rtm_scope
	AddrFlags uint32 // ifa_flags, or IFA_FLAGS when present
	Addr      []byte // IFA_LOCAL, else IFA_ADDRESS; RTA_GATEWAY for a route

	Table    uint32 // rtm_table, or RTA_TABLE when present
	RouteTyp uint8  // rtm_type
	Priority uint32 // RTA_PRIORITY
}

var order = binary.NativeEndian

// parseMessages decodes the netlink messages of one datagram. It returns the
// messages decoded before the first malformed one together with an error
// wrapping one of the parse sentinels; the rest of the datagram is unusable,
// since lengths can no longer be trusted.
func parseMessages(b []byte) ([]message, error) {
	var out []message
	for off := 0; off < len(b); {
		if len(b)-off < nlmsgHdrLen {
			return out, fmt.Errorf("parse message at %d: %w", off, ErrShortHeader)
		}
		n := int(order.Uint32(b[off:]))
		if n < nlmsgHdrLen || n > len(b)-off {
			return out, fmt.Errorf("parse message at %d: length %d: %w", off, n, ErrBadLength)
		}
		m, err := parseMessage(b[off : off+n])
		if err != nil {
			return out, fmt.Errorf("parse message at %d: %w", off, err)
		}
		out = append(out, m)
		off += align(n)
	}
	return out, nil
}

// parseMessage decodes one message whose length b has been checked.
func parseMessage(b []byte) (message, error) {
	m := message{
		Type:  order.Uint16(b[4:]),
		Flags: order.Uint16(b[6:]),
		Seq:   order.Uint32(b[8:]),
		Pid:   order.Uint32(b[12:]),
	}
	body := b[nlmsgHdrLen:]
	switch m.Type {
	case nlmsgError:
		if len(body) < 4 {
			return m, fmt.Errorf("error type %d: %w", m.Type, ErrShortBody)
		}
		m.Errno = int32(order.Uint32(body))
	case rtmNewLink, rtmDelLink:
		if len(body) < ifinfoLen {
			return m, fmt.Errorf("link type %d: %w", m.Type, ErrShortBody)
		}
		m.Index = int32(order.Uint32(body[4:]))
		m.IfFlags = order.Uint32(body[8:])
		return m, parseAttrs(body[ifinfoLen:], func(typ uint16, v []byte) {
			if typ == iflaIfname {
				m.Name = cString(v)
			}
		})
	case rtmNewAddr, rtmDelAddr:
		if len(body) < ifaddrLen {
			return m, fmt.Errorf("addr type %d: %w", m.Type, ErrShortBody)
		}
		m.Family = body[0]
		m.PrefixLen = body[1]
		m.AddrFlags = uint32(body[2])
		m.Scope = body[3]
		m.Index = int32(order.Uint32(body[4:]))
		var local, address []byte
		err := parseAttrs(body[ifaddrLen:], func(typ uint16, v []byte) {
			switch typ {
			case ifaAddress:
				address = v
			case ifaLocal:
				local = v
			case ifaLabel:
				m.Name = cString(v)
			case ifaFlags:
				if len(v) >= 4 {
					m.AddrFlags = order.Uint32(v)
				}
			}
		})
		m.Addr = clone(address)
		if local != nil {
			m.Addr = clone(local) // IFA_ADDRESS is the peer on point-to-point links
		}
		return m, err
	case rtmNewRoute, rtmDelRoute:
		if len(body) < rtmsgLen {
			return m, fmt.Errorf("route type %d: %w", m.Type, ErrShortBody)
		}
		m.Family = body[0]
		m.PrefixLen = body[1]
		m.Table = uint32(body[4])
		m.Scope = body[6]
		m.RouteTyp = body[7]
		return m, parseAttrs(body[rtmsgLen:], func(typ uint16, v []byte) {
			switch typ {
			case rtaOIF:
				if len(v) >= 4 {
					m.Index = int32(order.Uint32(v))
				}
			case rtaGateway:
				m.Addr = clone(v)
			case rtaPriority:
				if len(v) >= 4 {
					m.Priority = order.Uint32(v)
				}
			case rtaTable:
				if len(v) >= 4 {
					m.Table = order.Uint32(v)
				}
			}
		})
	}
	return m, nil
}

// parseAttrs walks a run of rtattr, calling fn with each type (nesting and
// byte-order bits masked off) and value.
func parseAttrs(b []byte, fn func(typ uint16, v []byte)) error {
	for off := 0; off < len(b); {
		if len(b)-off < rtattrLen {
			return fmt.Errorf("attribute at %d: %d bytes left: %w", off, len(b)-off, ErrBadAttribute)
		}
		n := int(order.Uint16(b[off:]))
		if n < rtattrLen || n > len(b)-off {
			return fmt.Errorf("attribute at %d: length %d: %w", off, n, ErrBadAttribute)
		}
		fn(order.Uint16(b[off+2:])&0x3fff, b[off+rtattrLen:off+n])
		off += align(n)
	}
	return nil
}

// align rounds n up to the 4-byte alignment of NLMSG_ALIGN and RTA_ALIGN.
func align(n int) int { return (n + 3) &^ 3 }

// cString returns v up to its first NUL.
func cString(v []byte) string {
	for i, c := range v {
		if c == 0 {
			return string(v[:i])
		}
	}
	return string(v)
}

func clone(v []byte) []byte {
	if v == nil {
		return nil
	}
	return append([]byte(nil), v...)
}

// dumpRequest builds an NLM_F_DUMP request of type typ (RTM_GETLINK,
// RTM_GETADDR or RTM_GETROUTE) for every family, with a zeroed header struct
// of the size the kernel expects for it.
func dumpRequest(typ uint16, seq uint32) []byte {
	body := map[uint16]int{rtmGetLink: ifinfoLen, rtmGetAddr: ifaddrLen, rtmGetRoute: rtmsgLen}[typ]
	b := make([]byte, nlmsgHdrLen+body)
	order.PutUint32(b[0:], uint32(len(b)))
	order.PutUint16(b[4:], typ)
	order.PutUint16(b[6:], nlmFRequest|nlmFDump)
	order.PutUint32(b[8:], seq)
	return b
}
