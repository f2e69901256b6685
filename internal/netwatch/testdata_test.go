package netwatch

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
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

var typeNames = map[uint16]string{
	nlmsgError: "ERROR", nlmsgDone: "DONE",
	rtmNewLink: "NEWLINK", rtmDelLink: "DELLINK",
	rtmNewAddr: "NEWADDR", rtmDelAddr: "DELADDR",
	rtmNewRoute: "NEWROUTE", rtmDelRoute: "DELROUTE",
}

// describe renders the fields of m that its type uses, for golden tables.
func describe(m message) string {
	name, ok := typeNames[m.Type]
	if !ok {
		name = fmt.Sprintf("type%d", m.Type)
	}
	s := fmt.Sprintf("%s seq=%d", name, m.Seq)
	ip := func(b []byte) string {
		if a, ok := netip.AddrFromSlice(b); ok {
			return a.String()
		}
		return fmt.Sprintf("%x", b)
	}
	switch m.Type {
	case nlmsgError:
		s += fmt.Sprintf(" errno=%d", m.Errno)
	case rtmNewLink, rtmDelLink:
		s += fmt.Sprintf(" #%d %s flags=%#x", m.Index, m.Name, m.IfFlags)
	case rtmNewAddr, rtmDelAddr:
		s += fmt.Sprintf(" #%d %s/%d scope=%d flags=%#x", m.Index, ip(m.Addr), m.PrefixLen, m.Scope, m.AddrFlags)
		if m.Name != "" {
			s += " label=" + m.Name
		}
	case rtmNewRoute, rtmDelRoute:
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
