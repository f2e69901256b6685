package fleet

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"
)

// TestThrottledTerminalsDoNotRetryInStep turns away most of a fleet that
// sends at the same instant (the endpoint gathers the first requests, see
// fleetSpec.Gather), on the real clock, and checks that the
// terminals do not all come back at the same instant: no 100 ms may hold
// more than 40% of their first retries (spread with full jitter over a
// second, a 100 ms slice holds about a tenth). Retrying exactly at
// Retry-After, as a transport-level quick retry without jitter does, brings
// them back together, to be turned away together again.
func TestThrottledTerminalsDoNotRetryInStep(t *testing.T) {
	const (
		window  = 100 * time.Millisecond
		maxStep = 0.4
	)
	spec := fleetSpec{Terminals: 100, Events: 1, Rate: 20, Burst: 20, Speed: 1, Window: time.Second, Gather: true}
	f := runFleet(t, spec)

	// When each terminal turned away by its first request tried again.
	first := map[string]bool{} // plate → first request throttled
	var retries []time.Duration
	for _, r := range f.reqs {
		throttled, seen := first[r.plate]
		switch {
		case !seen:
			first[r.plate] = r.throttled
		case throttled:
			retries = append(retries, r.at.Sub(f.start))
			first[r.plate] = false // only its first retry
		}
	}
	if len(retries) < spec.Terminals/4 {
		t.Fatalf("only %d terminals were turned away at first; the limiter did not bite", len(retries))
	}
	slices.Sort(retries)
	most, at := 0, time.Duration(0)
	j := 0
	for i := range retries {
		for j < len(retries) && retries[j] < retries[i]+window {
			j++
		}
		if j-i > most {
			most, at = j-i, retries[i]
		}
	}
	share := float64(most) / float64(len(retries))
	fmt.Fprintf(os.Stdout, "in step: %d terminals turned away at once; %d (%.0f%%) of their first retries within %s at +%s; retries from +%s to +%s\n",
		len(retries), most, 100*share, window, at.Round(time.Millisecond), retries[0].Round(time.Millisecond), retries[len(retries)-1].Round(time.Millisecond))
	if share > maxStep {
		t.Errorf("%.0f%% of the turned-away terminals retried within the same %s, want ≤ %.0f%%: they come back in step", 100*share, window, 100*maxStep)
	}
}
