package netwatch

import (
	"slices"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// TestTrackerCaptured replays the captured session through a tracker: dump
// replies (NLM_F_MULTI) as the silent baseline, the rest live.
func TestTrackerCaptured(t *testing.T) {
	tr := newTracker()
	steps := []struct {
		file string
		want []change
	}{
		{"dump-link.hex", nil},
		{"dump-addr.hex", nil},  // fe80:: is link scope: not connectivity
		{"dump-route.hex", nil}, // no default route yet
		{"link-down.hex", []change{{KindLinkDown, "vA"}}},
		{"link-up.hex", []change{{KindLinkUp, "vA"}}}, // on RUNNING, not on UP alone
		{"addr4-add.hex", []change{{KindAddrAdded, "vA"}}},
		{"route4-add.hex", []change{{KindDefaultRouteAdded, "vA"}}},
		{"addr6-add.hex", []change{{KindAddrAdded, "vA"}}},
		{"route6-add.hex", []change{{KindDefaultRouteAdded, "vA"}}},
		{"route4-del.hex", []change{{KindDefaultRouteRemoved, "vA"}}},
		{"addr4-del.hex", []change{{KindAddrRemoved, "vA"}}},
		// Going down forgets vA's address and route, so their deletion
		// after it is silent.
		{"link-del.hex", []change{{KindLinkDown, "vA"}}},
	}
	for _, s := range steps {
		var got []change
		for _, b := range readHex(t, s.file) {
			for _, nm := range frames(t, b) {
				m, ok, err := decode(nm)
				if err != nil {
					t.Fatalf("%s: %v", s.file, err)
				}
				if !ok {
					continue
				}
				if c, ok := tr.apply(m, nm.Header.Flags&netlink.Multi != 0); ok {
					got = append(got, c)
				}
			}
		}
		if !slices.Equal(got, s.want) {
			t.Errorf("%s: changes %v, want %v", s.file, got, s.want)
		}
	}
	if len(tr.links) != 1 || len(tr.addrs) != 0 || len(tr.routes) != 0 {
		t.Errorf("state left: %d links, %d addrs, %d routes; want lo only", len(tr.links), len(tr.addrs), len(tr.routes))
	}
}

func link(index int32, name string, flags uint32) message {
	return message{Type: unix.RTM_NEWLINK, Index: index, Name: name, IfFlags: flags}
}

func addr(typ uint16, index int32, a []byte, scope uint8, flags uint32) message {
	return message{Type: typ, Family: unix.AF_INET, PrefixLen: 24, Index: index, Addr: a, Scope: scope, AddrFlags: flags}
}

func defRoute(typ uint16, index int32, gw []byte) message {
	return message{Type: typ, Family: unix.AF_INET, Index: index, Addr: gw, Table: unix.RT_TABLE_MAIN, RouteTyp: unix.RTN_UNICAST}
}

const upRunning = unix.IFF_UP | unix.IFF_RUNNING

func TestTracker(t *testing.T) {
	gw := []byte{10, 200, 0, 1}
	ip := []byte{10, 200, 0, 2}
	tests := []struct {
		name string
		msgs []message
		want []change
	}{
		{"repeated NEWLINK while up is one link-up",
			[]message{link(2, "wwan0", upRunning), link(2, "", upRunning), link(2, "wwan0", upRunning)},
			[]change{{KindLinkUp, "wwan0"}}},
		{"up without running is not up",
			[]message{link(2, "wwan0", unix.IFF_UP), link(2, "wwan0", 0)},
			nil},
		{"loopback is ignored",
			[]message{link(1, "lo", upRunning|unix.IFF_LOOPBACK), addr(unix.RTM_NEWADDR, 1, []byte{127, 0, 0, 1}, unix.RT_SCOPE_UNIVERSE, 0)},
			nil},
		{"down link first seen is not a change",
			[]message{link(3, "eth0", 0), {Type: unix.RTM_DELLINK, Index: 3}},
			nil},
		{"deleting an up link is link-down",
			[]message{link(3, "eth0", upRunning), {Type: unix.RTM_DELLINK, Index: 3}},
			[]change{{KindLinkUp, "eth0"}, {KindLinkDown, "eth0"}}},
		{"tentative address counts once DAD is done",
			[]message{addr(unix.RTM_NEWADDR, 2, ip, unix.RT_SCOPE_UNIVERSE, unix.IFA_F_TENTATIVE), addr(unix.RTM_NEWADDR, 2, ip, unix.RT_SCOPE_UNIVERSE, 0)},
			[]change{{KindAddrAdded, "#2"}}},
		{"address refreshes (IPv6 lifetimes) are one addr-added",
			[]message{addr(unix.RTM_NEWADDR, 2, ip, unix.RT_SCOPE_UNIVERSE, 0), addr(unix.RTM_NEWADDR, 2, ip, unix.RT_SCOPE_UNIVERSE, 0)},
			[]change{{KindAddrAdded, "#2"}}},
		{"address that fails DAD is removed",
			[]message{addr(unix.RTM_NEWADDR, 2, ip, unix.RT_SCOPE_UNIVERSE, 0), addr(unix.RTM_NEWADDR, 2, ip, unix.RT_SCOPE_UNIVERSE, unix.IFA_F_DADFAILED)},
			[]change{{KindAddrAdded, "#2"}, {KindAddrRemoved, "#2"}}},
		{"unknown address deletion is silent",
			[]message{addr(unix.RTM_DELADDR, 2, ip, unix.RT_SCOPE_UNIVERSE, 0)},
			nil},
		{"label names an address before its link is known",
			[]message{func() message {
				m := addr(unix.RTM_NEWADDR, 4, ip, unix.RT_SCOPE_UNIVERSE, 0)
				m.Name = "ppp0"
				return m
			}()},
			[]change{{KindAddrAdded, "ppp0"}}},
		{"non-default, other-table and unreachable routes are ignored",
			[]message{
				func() message { m := defRoute(unix.RTM_NEWROUTE, 2, gw); m.PrefixLen = 24; return m }(),
				func() message { m := defRoute(unix.RTM_NEWROUTE, 2, gw); m.Table = 100; return m }(),
				func() message { m := defRoute(unix.RTM_NEWROUTE, 2, nil); m.RouteTyp = 7; return m }(),
				func() message { m := defRoute(unix.RTM_NEWROUTE, 2, gw); m.Family = 0; return m }(),
			},
			nil},
		{"route replaced in place is one default-route-added",
			[]message{link(2, "wwan0", upRunning), defRoute(unix.RTM_NEWROUTE, 2, gw), defRoute(unix.RTM_NEWROUTE, 2, gw)},
			[]change{{KindLinkUp, "wwan0"}, {KindDefaultRouteAdded, "wwan0"}}},
		{"IPv4 flushes routes of a downed link silently; the re-added route counts",
			[]message{
				link(2, "wwan0", upRunning), defRoute(unix.RTM_NEWROUTE, 2, gw),
				link(2, "wwan0", unix.IFF_UP), // carrier lost: no RTM_DELROUTE follows
				link(2, "wwan0", upRunning), defRoute(unix.RTM_NEWROUTE, 2, gw),
			},
			[]change{
				{KindLinkUp, "wwan0"}, {KindDefaultRouteAdded, "wwan0"},
				{KindLinkDown, "wwan0"},
				{KindLinkUp, "wwan0"}, {KindDefaultRouteAdded, "wwan0"},
			}},
		{"a renamed link keeps its index",
			[]message{link(2, "eth0", 0), link(2, "wan", upRunning)},
			[]change{{KindLinkUp, "wan"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker()
			var got []change
			for _, m := range tt.msgs {
				if c, ok := tr.apply(m, false); ok {
					got = append(got, c)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("changes %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTrackerBaselineIsSilent(t *testing.T) {
	tr := newTracker()
	for _, m := range []message{link(2, "wwan0", upRunning), addr(unix.RTM_NEWADDR, 2, []byte{10, 0, 0, 2}, 0, 0), defRoute(unix.RTM_NEWROUTE, 2, []byte{10, 0, 0, 1})} {
		if c, ok := tr.apply(m, true); ok {
			t.Errorf("baseline %s gave change %v", describe(m), c)
		}
	}
	// The same state seen live again is no change either.
	if c, ok := tr.apply(link(2, "wwan0", upRunning), false); ok {
		t.Errorf("known up link gave %v", c)
	}
}

func TestTrackerSweep(t *testing.T) {
	tr := newTracker()
	tr.apply(link(2, "wwan0", upRunning), true)
	tr.apply(link(3, "eth0", upRunning), true)
	tr.apply(addr(unix.RTM_NEWADDR, 3, []byte{192, 168, 1, 2}, 0, 0), true)
	tr.apply(defRoute(unix.RTM_NEWROUTE, 2, []byte{10, 0, 0, 1}), true)
	tr.apply(addr(unix.RTM_NEWADDR, 2, []byte{10, 0, 0, 2}, 0, 0), true)

	// Lost notifications; the resync finds eth0 gone and wwan0's route
	// gone, and a new address.
	tr.begin()
	var got []change
	for _, m := range []message{
		link(2, "wwan0", upRunning),
		addr(unix.RTM_NEWADDR, 2, []byte{10, 0, 0, 2}, 0, 0),
		addr(unix.RTM_NEWADDR, 2, []byte{10, 0, 0, 3}, 0, 0),
	} {
		if c, ok := tr.apply(m, false); ok {
			got = append(got, c)
		}
	}
	got = append(got, tr.sweep()...)
	want := []change{{KindAddrAdded, "wwan0"}, {KindLinkDown, "eth0"}, {KindDefaultRouteRemoved, "wwan0"}}
	if !slices.Equal(got, want) {
		t.Errorf("changes %v, want %v", got, want)
	}
	if len(tr.links) != 1 || len(tr.addrs) != 2 || len(tr.routes) != 0 {
		t.Errorf("state %d links, %d addrs, %d routes; want 1, 2, 0", len(tr.links), len(tr.addrs), len(tr.routes))
	}
}
