package netwatch

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// readHex returns the datagrams of a testdata file: one hex line each,
// lines starting with # are comments.
func readHex(t testing.TB, name string) [][]byte {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		b, err := hex.DecodeString(line)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, b)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return out
}

// frames splits a captured datagram as mdlayher/netlink does on receive.
func frames(t testing.TB, b []byte) []netlink.Message {
	t.Helper()
	raw, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		t.Fatalf("frame datagram: %v", err)
	}
	out := make([]netlink.Message, len(raw))
	for i, r := range raw {
		out[i] = netlink.Message{Header: netlink.Header{
			Length: r.Header.Len, Type: netlink.HeaderType(r.Header.Type),
			Flags: netlink.HeaderFlags(r.Header.Flags), Sequence: r.Header.Seq, PID: r.Header.Pid,
		}, Data: r.Data}
	}
	return out
}

var typeNames = map[uint16]string{
	unix.NLMSG_DONE:  "DONE",
	unix.RTM_NEWLINK: "NEWLINK", unix.RTM_DELLINK: "DELLINK",
	unix.RTM_NEWADDR: "NEWADDR", unix.RTM_DELADDR: "DELADDR",
	unix.RTM_NEWROUTE: "NEWROUTE", unix.RTM_DELROUTE: "DELROUTE",
}

// describe renders the fields of m that its type uses, for golden tables.
func describe(m message) string {
	name, ok := typeNames[m.Type]
	if !ok {
		name = fmt.Sprintf("type%d", m.Type)
	}
	s := name
	ip := func(b []byte) string {
		if a, ok := netip.AddrFromSlice(b); ok {
			return a.String()
		}
		return fmt.Sprintf("%x", b)
	}
	switch m.Type {
	case unix.RTM_NEWLINK, unix.RTM_DELLINK:
		s += fmt.Sprintf(" #%d %s flags=%#x", m.Index, m.Name, m.IfFlags)
	case unix.RTM_NEWADDR, unix.RTM_DELADDR:
		s += fmt.Sprintf(" #%d %s/%d scope=%d flags=%#x", m.Index, ip(m.Addr), m.PrefixLen, m.Scope, m.AddrFlags)
		if m.Name != "" {
			s += " label=" + m.Name
		}
	case unix.RTM_NEWROUTE, unix.RTM_DELROUTE:
		s += fmt.Sprintf(" af=%d dst/%d table=%d type=%d oif=#%d", m.Family, m.PrefixLen, m.Table, m.RouteTyp, m.Index)
		if m.Addr != nil {
			s += " via " + ip(m.Addr)
		}
		if m.Priority != 0 {
			s += fmt.Sprintf(" metric=%d", m.Priority)
		}
	}
	return s
}
