package netwatch

import (
	"encoding/binary"
	"maps"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
)

// tracker keeps the state that turns rtnetlink messages into changes: which
// links are up, which usable addresses and default routes exist. The kernel
// repeats RTM_NEWLINK for any attribute change and RTM_NEWADDR on every IPv6
// lifetime refresh, so only transitions become changes.
type tracker struct {
	gen    uint64 // generation of the current (re)synchronisation
	links  map[int32]linkEntry
	addrs  map[string]entry // key: index, family, prefix length, address
	routes map[string]entry // key: family, oif, priority, gateway
}

type linkEntry struct {
	name     string
	up       bool // IFF_UP and IFF_RUNNING
	loopback bool
	seen     uint64
}

type entry struct {
	index int32
	seen  uint64
}

// change is a Change before it is stamped with a time.
type change struct {
	kind  string
	iface string
}

func newTracker() *tracker {
	return &tracker{
		links:  make(map[int32]linkEntry),
		addrs:  make(map[string]entry),
		routes: make(map[string]entry),
	}
}

// apply updates the state with m and returns the change it makes, if any.
// A baseline message (the initial dump) updates the state silently.
func (t *tracker) apply(m message, baseline bool) (change, bool) {
	c, ok := t.update(m)
	if baseline {
		return change{}, false
	}
	return c, ok
}

func (t *tracker) update(m message) (change, bool) {
	switch m.Type {
	case unix.RTM_NEWLINK:
		prev, known := t.links[m.Index]
		cur := linkEntry{
			name:     m.Name,
			up:       m.IfFlags&(unix.IFF_UP|unix.IFF_RUNNING) == unix.IFF_UP|unix.IFF_RUNNING,
			loopback: m.IfFlags&unix.IFF_LOOPBACK != 0,
			seen:     t.gen,
		}
		if cur.name == "" {
			cur.name = prev.name
		}
		t.links[m.Index] = cur
		switch {
		case cur.loopback:
		case cur.up && !(known && prev.up):
			return change{KindLinkUp, cur.name}, true
		case !cur.up && known && prev.up:
			t.forget(m.Index)
			return change{KindLinkDown, cur.name}, true
		}
	case unix.RTM_DELLINK:
		prev, known := t.links[m.Index]
		delete(t.links, m.Index)
		t.forget(m.Index)
		if known && prev.up && !prev.loopback {
			return change{KindLinkDown, prev.name}, true
		}
	case unix.RTM_NEWADDR, unix.RTM_DELADDR:
		key := addrKey(m)
		_, known := t.addrs[key]
		usable := m.Type == unix.RTM_NEWADDR && m.Scope == unix.RT_SCOPE_UNIVERSE &&
			m.AddrFlags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) == 0 && !t.links[m.Index].loopback
		switch {
		case usable:
			t.addrs[key] = entry{m.Index, t.gen}
			if !known {
				return change{KindAddrAdded, t.name(m.Index, m.Name)}, true
			}
		case known:
			delete(t.addrs, key)
			return change{KindAddrRemoved, t.name(m.Index, m.Name)}, true
		}
	case unix.RTM_NEWROUTE, unix.RTM_DELROUTE:
		if m.PrefixLen != 0 || m.Table != unix.RT_TABLE_MAIN || m.RouteTyp != unix.RTN_UNICAST ||
			(m.Family != unix.AF_INET && m.Family != unix.AF_INET6) {
			return change{}, false
		}
		key := routeKey(m)
		_, known := t.routes[key]
		switch {
		case m.Type == unix.RTM_NEWROUTE:
			t.routes[key] = entry{m.Index, t.gen}
			if !known {
				return change{KindDefaultRouteAdded, t.name(m.Index, "")}, true
			}
		case known:
			delete(t.routes, key)
			return change{KindDefaultRouteRemoved, t.name(m.Index, "")}, true
		}
	}
	return change{}, false
}

// forget drops the addresses and routes of a link that went down: IPv4
// flushes the routes of a downed link without RTM_DELROUTE, and a route
// re-added later must count as new.
func (t *tracker) forget(index int32) {
	for k, e := range t.addrs {
		if e.index == index {
			delete(t.addrs, k)
		}
	}
	for k, e := range t.routes {
		if e.index == index {
			delete(t.routes, k)
		}
	}
}

// begin starts a resynchronisation: entries not seen again before sweep
// are gone.
func (t *tracker) begin() { t.gen++ }

// sweep removes what the last resynchronisation did not see and returns the
// changes that makes, links first, in a stable order.
func (t *tracker) sweep() []change {
	var out []change
	for _, i := range slices.Sorted(maps.Keys(t.links)) {
		l := t.links[i]
		if l.seen >= t.gen {
			continue
		}
		delete(t.links, i)
		t.forget(i)
		if l.up && !l.loopback {
			out = append(out, change{KindLinkDown, l.name})
		}
	}
	for _, set := range []struct {
		m    map[string]entry
		kind string
	}{{t.addrs, KindAddrRemoved}, {t.routes, KindDefaultRouteRemoved}} {
		for _, k := range slices.Sorted(maps.Keys(set.m)) {
			if e := set.m[k]; e.seen < t.gen {
				delete(set.m, k)
				out = append(out, change{set.kind, t.name(e.index, "")})
			}
		}
	}
	return out
}

// name returns the interface name of index: the link's, else label, else
// "#index".
func (t *tracker) name(index int32, label string) string {
	if l, ok := t.links[index]; ok && l.name != "" {
		return l.name
	}
	if label != "" {
		return label
	}
	return "#" + strconv.Itoa(int(index))
}

func addrKey(m message) string {
	b := binary.BigEndian.AppendUint32(nil, uint32(m.Index))
	b = append(b, m.Family, m.PrefixLen)
	return string(append(b, m.Addr...))
}

func routeKey(m message) string {
	b := binary.BigEndian.AppendUint32([]byte{m.Family}, uint32(m.Index))
	b = binary.BigEndian.AppendUint32(b, m.Priority)
	return string(append(b, m.Addr...))
}
