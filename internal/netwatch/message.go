package netwatch

import (
	"fmt"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// message is the part of one rtnetlink link, address or route message the
// tracker uses, taken from the library's decoded form. Fields that do not
// apply to Type stay zero.
type message struct {
	Type uint16 // RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR, ...

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

// decode turns one notification into a message. ok is false for a type the
// watcher does not follow; err is set when the library cannot decode the
// body of one it does.
func decode(nm netlink.Message) (m message, ok bool, err error) {
	typ := uint16(nm.Header.Type)
	switch typ {
	case unix.RTM_NEWLINK, unix.RTM_DELLINK:
		var l rtnetlink.LinkMessage
		if err := l.UnmarshalBinary(nm.Data); err != nil {
			return m, false, fmt.Errorf("decode link message: %w", err)
		}
		return fromLink(typ, &l), true, nil
	case unix.RTM_NEWADDR, unix.RTM_DELADDR:
		var a rtnetlink.AddressMessage
		if err := a.UnmarshalBinary(nm.Data); err != nil {
			return m, false, fmt.Errorf("decode address message: %w", err)
		}
		return fromAddr(typ, &a), true, nil
	case unix.RTM_NEWROUTE, unix.RTM_DELROUTE:
		var r rtnetlink.RouteMessage
		if err := r.UnmarshalBinary(nm.Data); err != nil {
			return m, false, fmt.Errorf("decode route message: %w", err)
		}
		return fromRoute(typ, &r), true, nil
	}
	return m, false, nil
}

func fromLink(typ uint16, l *rtnetlink.LinkMessage) message {
	m := message{Type: typ, Index: int32(l.Index), IfFlags: l.Flags}
	if l.Attributes != nil {
		m.Name = l.Attributes.Name
	}
	return m
}

func fromAddr(typ uint16, a *rtnetlink.AddressMessage) message {
	m := message{Type: typ, Index: int32(a.Index), Family: a.Family, PrefixLen: a.PrefixLength,
		Scope: a.Scope, AddrFlags: uint32(a.Flags)}
	if at := a.Attributes; at != nil {
		m.Name = at.Label
		if at.Flags != 0 {
			m.AddrFlags = at.Flags // IFA_FLAGS supersedes the 8-bit ifa_flags
		}
		m.Addr = ipBytes(at.Address, a.Family)
		if at.Local != nil {
			m.Addr = ipBytes(at.Local, a.Family) // IFA_ADDRESS is the peer on point-to-point links
		}
	}
	return m
}

func fromRoute(typ uint16, r *rtnetlink.RouteMessage) message {
	at := r.Attributes
	m := message{Type: typ, Index: int32(at.OutIface), Family: r.Family, PrefixLen: r.DstLength,
		Scope: r.Scope, Table: uint32(r.Table), RouteTyp: r.Type, Priority: at.Priority,
		Addr: ipBytes(at.Gateway, r.Family)}
	if at.Table != 0 {
		m.Table = at.Table
	}
	return m
}

// ipBytes returns ip in its wire length for family (4 bytes for AF_INET),
// so that an address keys the same whichever form the decoder gave.
func ipBytes(ip []byte, family uint8) []byte {
	if len(ip) == 0 {
		return nil
	}
	if family == unix.AF_INET && len(ip) == 16 {
		ip = ip[12:]
	}
	return append([]byte(nil), ip...)
}
