package netwatch

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// capturedTests are the datagrams TestCapture recorded in a namespace
// (veth vA, 10.200.0.2/24 via 10.200.0.1, 2001:db8::2/64 via 2001:db8::1),
// decoded by the rtnetlink library (NLMSG_DONE, which ends a dump, is not a
// message the tracker sees). Windows overlap: a file also holds what the kernel sent late for
// the step before (IPv6 DAD ending, linkwatch's deferred RUNNING).
var capturedTests = []struct {
	file string
	want []string
}{
	{"dump-link.hex", []string{
		"NEWLINK #1 lo flags=0x8",
		"NEWLINK #2 vA flags=0x11043", // UP|BROADCAST|RUNNING|MULTICAST|LOWER_UP
	}},
	{"dump-addr.hex", []string{
		"NEWADDR #2 fe80::dcf4:52ff:fe7f:8889/64 scope=253 flags=0x80",
	}},
	{"dump-route.hex", []string{
		"NEWROUTE af=10 dst/64 table=254 type=1 oif=#2 metric=256",
		"NEWROUTE af=10 dst/128 table=255 type=2 oif=#2",
		"NEWROUTE af=10 dst/8 table=255 type=5 oif=#2 metric=256",
	}},
	{"link-down.hex", []string{
		"NEWLINK #2 vA flags=0x1002",
		"DELROUTE af=10 dst/64 table=254 type=1 oif=#2 metric=256",
		"DELROUTE af=10 dst/128 table=255 type=2 oif=#2",
		"DELROUTE af=10 dst/8 table=255 type=5 oif=#2 metric=256",
		"DELADDR #2 fe80::dcf4:52ff:fe7f:8889/64 scope=253 flags=0x80",
	}},
	{"link-up.hex", []string{
		"NEWLINK #2 vA flags=0x11003", // up, not yet running
		"NEWROUTE af=10 dst/8 table=255 type=5 oif=#2 metric=256",
		"NEWROUTE af=10 dst/64 table=254 type=1 oif=#2 metric=256",
		"NEWLINK #2 vA flags=0x11043", // running
	}},
	{"addr4-add.hex", []string{
		"NEWADDR #2 10.200.0.2/24 scope=0 flags=0x80 label=vA",
		"NEWROUTE af=2 dst/32 table=255 type=2 oif=#2",
		"NEWROUTE af=2 dst/24 table=254 type=1 oif=#2",
		"NEWROUTE af=2 dst/32 table=255 type=3 oif=#2",
		"NEWADDR #2 fe80::dcf4:52ff:fe7f:8889/64 scope=253 flags=0x80",
		"NEWROUTE af=10 dst/128 table=255 type=2 oif=#2",
	}},
	{"route4-add.hex", []string{
		"NEWROUTE af=2 dst/0 table=254 type=1 oif=#2 via 10.200.0.1",
	}},
	{"addr6-add.hex", []string{
		"NEWROUTE af=10 dst/64 table=254 type=1 oif=#2 metric=256",
		"NEWADDR #2 2001:db8::2/64 scope=0 flags=0x82",
		"NEWROUTE af=10 dst/128 table=255 type=2 oif=#2",
	}},
	{"route6-add.hex", []string{
		"NEWROUTE af=10 dst/0 table=254 type=1 oif=#2 via 2001:db8::1 metric=1024",
	}},
	{"route4-del.hex", []string{
		"DELROUTE af=2 dst/0 table=254 type=1 oif=#2 via 10.200.0.1",
	}},
	{"addr4-del.hex", []string{
		"DELADDR #2 10.200.0.2/24 scope=0 flags=0x80 label=vA",
		"DELROUTE af=2 dst/24 table=254 type=1 oif=#2",
		"DELROUTE af=2 dst/32 table=255 type=3 oif=#2",
		"DELROUTE af=2 dst/32 table=255 type=2 oif=#2",
	}},
	{"link-del.hex", []string{
		"NEWLINK #2 vA flags=0x1002",
		"DELROUTE af=10 dst/64 table=254 type=1 oif=#2 metric=256",
		"DELROUTE af=10 dst/64 table=254 type=1 oif=#2 metric=256",
		"DELROUTE af=10 dst/0 table=254 type=1 oif=#2 via 2001:db8::1 metric=1024",
		"DELROUTE af=10 dst/128 table=255 type=2 oif=#2",
		"DELROUTE af=10 dst/128 table=255 type=2 oif=#2",
		"DELROUTE af=10 dst/8 table=255 type=5 oif=#2 metric=256",
		"DELADDR #2 2001:db8::2/64 scope=0 flags=0x82",
		"DELADDR #2 fe80::dcf4:52ff:fe7f:8889/64 scope=253 flags=0x80",
		"DELLINK #2 vA flags=0x1002",
	}},
}

// TestDecodeCaptured decodes real kernel datagrams with the library and the
// translation the watcher uses.
func TestDecodeCaptured(t *testing.T) {
	for _, tt := range capturedTests {
		t.Run(tt.file, func(t *testing.T) {
			var got []string
			for _, b := range readHex(t, tt.file) {
				for _, nm := range frames(t, b) {
					m, ok, err := decode(nm)
					if err != nil {
						t.Fatalf("decode: %v", err)
					}
					if ok {
						got = append(got, describe(m))
					}
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("decoded\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestDecodeMalformed: a body shorter than its fixed struct is an error,
// and a type the watcher does not follow is skipped without one.
func TestDecodeMalformed(t *testing.T) {
	for _, tt := range []struct {
		name   string
		typ    uint16
		data   []byte
		ok     bool
		hasErr bool
	}{
		{"link body short", unix.RTM_NEWLINK, make([]byte, 8), false, true},
		{"addr body short", unix.RTM_NEWADDR, make([]byte, 4), false, true},
		{"route body short", unix.RTM_DELROUTE, make([]byte, 8), false, true},
		{"attribute beyond message", unix.RTM_NEWADDR, append(make([]byte, 8), 0x08, 0, 1, 0), false, true},
		{"neighbour skipped", unix.RTM_NEWNEIGH, make([]byte, 2), false, false},
		{"done skipped", unix.NLMSG_DONE, nil, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, ok, err := decode(netlink.Message{Header: netlink.Header{Type: netlink.HeaderType(tt.typ)}, Data: tt.data})
			if ok != tt.ok || (err != nil) != tt.hasErr {
				t.Errorf("decode = ok %v, err %v; want ok %v, error %v", ok, err, tt.ok, tt.hasErr)
			}
		})
	}
}

// TestDecodeFields: fields past the fixed struct come from their attributes
// (RTA_TABLE beyond rtm_table's 8 bits, IFA_FLAGS beyond ifa_flags').
func TestDecodeFields(t *testing.T) {
	for _, m := range []message{
		{Type: unix.RTM_NEWADDR, Family: unix.AF_INET, PrefixLen: 32, Index: 5, Addr: []byte{10, 64, 0, 9}, AddrFlags: 0x200},
		{Type: unix.RTM_NEWADDR, Family: unix.AF_INET6, PrefixLen: 64, Index: 5, Addr: netipBytes("2001:db8::9"), Name: "wwan0"},
		{Type: unix.RTM_NEWROUTE, Family: unix.AF_INET, Table: 1000, RouteTyp: unix.RTN_UNICAST, Index: 3, Addr: []byte{10, 0, 0, 1}, Priority: 50},
		{Type: unix.RTM_DELLINK, Index: 7, Name: "eth1", IfFlags: unix.IFF_UP},
	} {
		got, ok, err := decode(encode(m))
		if err != nil || !ok || describe(got) != describe(m) {
			t.Errorf("decode(encode(%s)) = %s, %v, %v", describe(m), describe(got), ok, err)
		}
	}
}

func netipBytes(s string) []byte { return netip.MustParseAddr(s).AsSlice() }
