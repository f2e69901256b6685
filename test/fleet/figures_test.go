package fleet

import (
	"fmt"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// fleetFigures is what one simulation measured.
type fleetFigures struct {
	Spec      fleetSpec
	Requests  int           // seen by the limiter after the return
	Throttled int           // answered 429
	First     time.Duration // simulated, from the return to the first request
	Drained   time.Duration // simulated, from the return to the last delivery
	Peak      float64       // highest request rate after settle, per simulated second
	PeakAt    time.Duration // start of the window with the peak
	Series    []int         // requests per Window after the return
	Throttles []int         // 429s per Window
	Wall      time.Duration // real time of the run after the return
	CPU       float64       // share of all cores used after the return
	Conns     uint64        // TCP connections the uploaders opened
	Sent      uint64        // bytes the uploaders sent
	Received  uint64        // bytes the uploaders received

	reqs  []request // every request the limiter saw, in arrival order
	start time.Time // simulated time the network returned
}

func (f fleetFigures) String() string {
	s, ideal := f.Spec, f.Spec.ideal()
	var b strings.Builder
	fmt.Fprintf(&b, "fleet: %d terminals × %d events, R = %g/s (burst %g), outage %s, %g× real time\n",
		s.Terminals, s.Events, s.Rate, s.Burst, s.Outage, s.Speed)
	fmt.Fprintf(&b, "  first request +%.1fs after the return (TLS handshakes and signing of the whole fleet on this machine's CPU)\n", f.First.Seconds())
	fmt.Fprintf(&b, "  drained in %.1fs = %.2f × ideal %.0fs (aim ≤ %.1f)\n", f.Drained.Seconds(), f.Drained.Seconds()/ideal.Seconds(), ideal.Seconds(), aimDrained)
	fmt.Fprintf(&b, "  peak request rate after %s: %.1f/s = %.2f × R over %s windows, at +%s (aim ≤ %.1f)\n",
		settle, f.Peak, f.Peak/s.Rate, s.Window, f.PeakAt.Round(100*time.Millisecond), aimPeak)
	n := s.Terminals * s.Events
	fmt.Fprintf(&b, "  requests %d (%.2f per event), 429s %d (%.2f per event)\n", f.Requests, float64(f.Requests)/float64(n), f.Throttled, float64(f.Throttled)/float64(n))
	fmt.Fprintf(&b, "  wire: %d connections, %.0f B sent + %.0f B received per event\n", f.Conns, float64(f.Sent)/float64(n), float64(f.Received)/float64(n))
	fmt.Fprintf(&b, "  real time %.1fs, CPU %.0f%% of %d cores\n", f.Wall.Seconds(), 100*f.CPU, runtime.NumCPU())
	fmt.Fprintf(&b, "  requests (429s) per %s:", s.Window)
	for i := range f.Series {
		fmt.Fprintf(&b, " %d(%d)", f.Series[i], f.Throttles[i])
	}
	return b.String()
}

// measure fills the drain time, the peak rate and the series from the
// requests the limiter saw (in arrival order) after start.
func measure(f *fleetFigures, reqs []request, start time.Time) {
	s := f.Spec
	var at []time.Duration
	for _, r := range reqs {
		d := r.at.Sub(start)
		if d < 0 {
			continue
		}
		if len(at) == 0 {
			f.First = d
		}
		at = append(at, d)
		f.Requests++
		if r.throttled {
			f.Throttled++
		} else {
			f.Drained = d
		}
		k := int(d / s.Window)
		for len(f.Series) <= k {
			f.Series = append(f.Series, 0)
			f.Throttles = append(f.Throttles, 0)
		}
		f.Series[k]++
		if r.throttled {
			f.Throttles[k]++
		}
	}
	// Sliding windows that start after settle and end before the last
	// request, one starting at each request.
	j := 0
	for i := range at {
		if at[i] < settle {
			continue
		}
		if at[i]+s.Window > at[len(at)-1] {
			break
		}
		for j < len(at) && at[j] < at[i]+s.Window {
			j++
		}
		if r := float64(j-i) / s.Window.Seconds(); r > f.Peak {
			f.Peak, f.PeakAt = r, at[i]
		}
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
