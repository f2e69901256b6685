package netwatch

// encodeMessage is the inverse of parseMessage for the fields message keeps,
// for round-trip tests and fakes. Optional attributes are written only when
// set, in the form the kernel uses.
func encodeMessage(m message) []byte {
	b := make([]byte, nlmsgHdrLen, 64)
	order.PutUint16(b[4:], m.Type)
	order.PutUint16(b[6:], m.Flags)
	order.PutUint32(b[8:], m.Seq)
	order.PutUint32(b[12:], m.Pid)
	u32 := func(v uint32) []byte { return order.AppendUint32(nil, v) }
	switch m.Type {
	case nlmsgError:
		b = order.AppendUint32(b, uint32(m.Errno))
		b = append(b, make([]byte, nlmsgHdrLen)...) // the echoed request header
	case rtmNewLink, rtmDelLink:
		b = append(b, 0, 0, 0, 0)
		b = order.AppendUint32(b, uint32(m.Index))
		b = order.AppendUint32(b, m.IfFlags)
		b = order.AppendUint32(b, 0) // ifi_change
		if m.Name != "" {
			b = appendAttr(b, iflaIfname, append([]byte(m.Name), 0))
		}
	case rtmNewAddr, rtmDelAddr:
		b = append(b, m.Family, m.PrefixLen, uint8(m.AddrFlags), m.Scope)
		b = order.AppendUint32(b, uint32(m.Index))
		if m.Addr != nil {
			b = appendAttr(b, ifaLocal, m.Addr)
		}
		if m.Name != "" {
			b = appendAttr(b, ifaLabel, append([]byte(m.Name), 0))
		}
		b = appendAttr(b, ifaFlags, u32(m.AddrFlags))
	case rtmNewRoute, rtmDelRoute:
		b = append(b, m.Family, m.PrefixLen, 0, 0, 0, 0, m.Scope, m.RouteTyp, 0, 0, 0, 0)
		b = appendAttr(b, rtaTable, u32(m.Table))
		if m.Index != 0 {
			b = appendAttr(b, rtaOIF, u32(uint32(m.Index)))
		}
		if m.Addr != nil {
			b = appendAttr(b, rtaGateway, m.Addr)
		}
		if m.Priority != 0 {
			b = appendAttr(b, rtaPriority, u32(m.Priority))
		}
	}
	order.PutUint32(b, uint32(len(b)))
	return b
}

// appendAttr appends one rtattr, padded to 4 bytes, to message b. The caller
// rewrites nlmsg_len.
func appendAttr(b []byte, typ uint16, v []byte) []byte {
	n := rtattrLen + len(v)
	b = order.AppendUint16(b, uint16(n))
	b = order.AppendUint16(b, typ)
	b = append(b, v...)
	return append(b, make([]byte, align(n)-n)...)
}
