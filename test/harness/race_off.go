//go:build !race

package harness

// Race reports whether this binary was built with the race detector; the
// end-to-end suite builds the agent the same way.
const Race = false
