package netwatch

import "time"

// Kinds of Change.
const (
	KindLinkUp              = "link-up"               // a non-loopback link became IFF_UP|IFF_RUNNING
	KindLinkDown            = "link-down"             // a link that was up stopped running or went away
	KindAddrAdded           = "addr-added"            // a global, usable (not tentative) address appeared
	KindAddrRemoved         = "addr-removed"          // such an address went away
	KindDefaultRouteAdded   = "default-route-added"   // a unicast default route appeared in the main table
	KindDefaultRouteRemoved = "default-route-removed" // such a route went away
)

// Change is one connectivity-relevant change seen on rtnetlink.
type Change struct {
	At        time.Time `json:"at"`
	Kind      string    `json:"kind"`      // one of the Kind constants
	Interface string    `json:"interface"` // interface name, or "#<index>" when unknown
	Up        bool      `json:"up"`        // connectivity likely gained: link-up, addr-added, default-route-added
}

// isUp reports whether a change of kind means connectivity was likely gained.
func isUp(kind string) bool {
	return kind == KindLinkUp || kind == KindAddrAdded || kind == KindDefaultRouteAdded
}
