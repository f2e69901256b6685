package netwatch

import (
	"encoding/hex"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// capturedTests are the datagrams TestCapture recorded in a namespace
// (veth vA, 10.200.0.2/24 via 10.200.0.1, 2001:db8::2/64 via 2001:db8::1),
// decoded. Windows overlap: a file also holds what the kernel sent late for
// the step before (IPv6 DAD ending, linkwatch's deferred RUNNING).
var capturedTests = []struct {
	file string
	want []string
}{
	{"dump-link.hex", []string{
		"NEWLINK seq=1 #1 lo flags=0x8",
		"NEWLINK seq=1 #2 vA flags=0x11043", // UP|BROADCAST|RUNNING|MULTICAST|LOWER_UP
		"DONE seq=1",
	}},
	{"dump-addr.hex", []string{
		"NEWADDR seq=2 #2 fe80::dcf4:52ff:fe7f:8889/64 scope=253 flags=0x80",
		"DONE seq=2",
	}},
	{"dump-route.hex", []string{
		"NEWROUTE seq=3 af=10 dst/64 table=254 type=1 oif=#2 metric=256",
		"NEWROUTE seq=3 af=10 dst/128 table=255 type=2 oif=#2",
		"NEWROUTE seq=3 af=10 dst/8 table=255 type=5 oif=#2 metric=256",
		"DONE seq=3",
	}},
	{"error.hex", []string{
		"ERROR seq=4 errno=-95", // EOPNOTSUPP for message type 0x7ff0
	}},
	{"link-down.hex", []string{
		"NEWLINK seq=0 #2 vA flags=0x1002",
		"DELROUTE seq=0 af=10 dst/64 table=254 type=1 oif=#2 metric=256",
		"DELROUTE seq=0 af=10 dst/128 table=255 type=2 oif=#2",
		"DELROUTE seq=0 af=10 dst/8 table=255 type=5 oif=#2 metric=256",
		"DELADDR seq=0 #2 fe80::dcf4:52ff:fe7f:8889/64 scope=253 flags=0x80",
	}},
	{"link-up.hex", []string{
		"NEWLINK seq=0 #2 vA flags=0x11003", // up, not yet running
		"NEWROUTE seq=0 af=10 dst/8 table=255 type=5 oif=#2 metric=256",
		"NEWROUTE seq=0 af=10 dst/64 table=254 type=1 oif=#2 metric=256",
		"NEWLINK seq=0 #2 vA flags=0x11043", // running
	}},
	{"addr4-add.hex", []string{
		"NEWADDR seq=1795867010 #2 10.200.0.2/24 scope=0 flags=0x80 label=vA",
		"NEWROUTE seq=0 af=2 dst/32 table=255 type=2 oif=#2",
		"NEWROUTE seq=0 af=2 dst/24 table=254 type=1 oif=#2",
		"NEWROUTE seq=0 af=2 dst/32 table=255 type=3 oif=#2",
		"NEWADDR seq=0 #2 fe80::dcf4:52ff:fe7f:8889/64 scope=253 flags=0x80",
		"NEWROUTE seq=0 af=10 dst/128 table=255 type=2 oif=#2",
	}},
	{"route4-add.hex", []string{
		"NEWROUTE seq=1795867011 af=2 dst/0 table=254 type=1 oif=#2 via 10.200.0.1",
	}},
	{"addr6-add.hex", []string{
		"NEWROUTE seq=0 af=10 dst/64 table=254 type=1 oif=#2 metric=256",
		"NEWADDR seq=0 #2 2001:db8::2/64 scope=0 flags=0x82",
		"NEWROUTE seq=0 af=10 dst/128 table=255 type=2 oif=#2",
	}},
	{"route6-add.hex", []string{
		"NEWROUTE seq=1795867014 af=10 dst/0 table=254 type=1 oif=#2 via 2001:db8::1 metric=1024",
	}},
	{"route4-del.hex", []string{
		"DELROUTE seq=1795867015 af=2 dst/0 table=254 type=1 oif=#2 via 10.200.0.1",
	}},
	{"addr4-del.hex", []string{
		"DELADDR seq=1795867016 #2 10.200.0.2/24 scope=0 flags=0x80 label=vA",
		"DELROUTE seq=0 af=2 dst/24 table=254 type=1 oif=#2",
		"DELROUTE seq=0 af=2 dst/32 table=255 type=3 oif=#2",
		"DELROUTE seq=0 af=2 dst/32 table=255 type=2 oif=#2",
	}},
	{"link-del.hex", []string{
		"NEWLINK seq=0 #2 vA flags=0x1002",
		"DELROUTE seq=0 af=10 dst/64 table=254 type=1 oif=#2 metric=256",
		"DELROUTE seq=0 af=10 dst/64 table=254 type=1 oif=#2 metric=256",
		"DELROUTE seq=0 af=10 dst/0 table=254 type=1 oif=#2 via 2001:db8::1 metric=1024",
		"DELROUTE seq=0 af=10 dst/128 table=255 type=2 oif=#2",
		"DELROUTE seq=0 af=10 dst/128 table=255 type=2 oif=#2",
		"DELROUTE seq=0 af=10 dst/8 table=255 type=5 oif=#2 metric=256",
		"DELADDR seq=0 #2 2001:db8::2/64 scope=0 flags=0x82",
		"DELADDR seq=0 #2 fe80::dcf4:52ff:fe7f:8889/64 scope=253 flags=0x80",
		"DELLINK seq=0 #2 vA flags=0x1002",
	}},
}

func TestParseCaptured(t *testing.T) {
	for _, tt := range capturedTests {
		t.Run(tt.file, func(t *testing.T) {
			var got []string
			for _, b := range readHex(t, tt.file) {
				msgs, err := parseMessages(b)
				if err != nil {
					t.Fatalf("parse: %v", err)
				}
				for _, m := range msgs {
					got = append(got, describe(m))
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("decoded\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// Malformed and edge-case datagrams, little-endian as on every target.
var malformedTests = []struct {
	name string
	hex  string
	n    int   // messages decoded before the error
	err  error // nil: the datagram is well formed
}{
	{"empty", "", 0, nil},
	{"short header", "1000000003000200", 0, ErrShortHeader},
	{"length below header", "08000000030002000100000000000000", 0, ErrBadLength},
	{"length beyond datagram", "40000000030002000100000000000000", 0, ErrBadLength},
	{"done", "14000000030002000100000000000000" + "00000000", 1, nil},
	{"unknown type kept as header", "10000000" + "1c00" + "0000" + "0000000000000000", 1, nil},
	{"error body short", "12000000020000000100000000000000" + "0000", 0, ErrShortBody},
	{"link body short", "18000000100000000000000000000000" + "0000000002000000", 0, ErrShortBody},
	{"addr body short", "14000000140000000000000000000000" + "02180000", 0, ErrShortBody},
	{"route body short", "18000000180000000000000000000000" + "02000000fe000001", 0, ErrShortBody},
	{"attribute length below header", "24000000100000000000000000000000" + "00000000020000004310010000000000" + "02000300", 0, ErrBadAttribute},
	{"attribute beyond message", "24000000100000000000000000000000" + "00000000020000004310010000000000" + "08000300", 0, ErrBadAttribute},
	{"trailing bytes after attributes", "26000000100000000000000000000000" + "00000000020000004310010000000000" + "0700030076410000" + "0000", 0, ErrBadAttribute},
	{"good message then bad", "14000000030002000100000000000000" + "00000000" + "0800000003000000", 1, ErrShortHeader},
	{"unaligned name attribute", "28000000100000000000000000000000" + "00000000020000004310010000000000" + "0700030076410000", 1, nil},
}

func TestParseMalformed(t *testing.T) {
	for _, tt := range malformedTests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := hex.DecodeString(tt.hex)
			if err != nil {
				t.Fatal(err)
			}
			msgs, err := parseMessages(b)
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Errorf("error %v, want %v", err, tt.err)
			}
			if len(msgs) != tt.n {
				t.Errorf("%d messages before the error, want %d", len(msgs), tt.n)
			}
		})
	}
}

func TestParseFields(t *testing.T) {
	// Point-to-point address (a PPP or cellular link): IFA_LOCAL is ours,
	// IFA_ADDRESS the peer's.
	m := message{Type: rtmNewAddr, Family: afInet, PrefixLen: 32, Index: 5, Addr: []byte{10, 64, 0, 9}}
	b := encodeMessage(m)
	b = appendAttr(b, ifaAddress, []byte{10, 64, 0, 1})
	order.PutUint32(b, uint32(len(b)))
	got, err := parseMessages(b)
	if err != nil || len(got) != 1 {
		t.Fatalf("parse: %v, %d messages", err, len(got))
	}
	if want := []byte{10, 64, 0, 9}; !slices.Equal(got[0].Addr, want) {
		t.Errorf("address %v, want the local %v", got[0].Addr, want)
	}

	// RTA_TABLE supersedes rtm_table (tables above 255 do not fit in it).
	r := message{Type: rtmNewRoute, Family: afInet, Table: 1000, RouteTyp: rtnUnicast}
	got, err = parseMessages(encodeMessage(r))
	if err != nil || got[0].Table != 1000 {
		t.Errorf("table %d (%v), want 1000", got[0].Table, err)
	}
}

// FuzzParseMessages checks that no datagram panics the parser and that what
// it decodes survives encoding and decoding again.
func FuzzParseMessages(f *testing.F) {
	for _, tt := range capturedTests {
		for _, b := range readHex(f, tt.file) {
			f.Add(b)
		}
	}
	for _, tt := range malformedTests {
		b, _ := hex.DecodeString(tt.hex)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, _ := parseMessages(b)
		for _, m := range msgs {
			again, err := parseMessages(encodeMessage(m))
			if err != nil || len(again) != 1 {
				t.Fatalf("re-parse of %+v: %v, %d messages", m, err, len(again))
			}
			if !reflect.DeepEqual(again[0], m) {
				t.Fatalf("round trip\n got %+v\nwant %+v", again[0], m)
			}
		}
	})
}
