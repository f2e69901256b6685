package powercut

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"taxi-agent/internal/metersim"
	"taxi-agent/internal/punch"
	"taxi-agent/test/harness"
)

// Timeouts of one boot.
const (
	bootTimeout  = 90 * time.Second // qemu start to the outbox listing (TCG is slow)
	firstAnswer  = 60 * time.Second // agent start to its first 0x90
	maxCutDelay  = 4 * time.Second  // after the first answer
	earlyCutRate = 8                // one cut in this many lands while the agent starts
)

// signInGrace is how long before a cut a sign-in must have been reported
// to count: a standard meter reports it once and expects no answer, and
// the agent stores it within this time.
const signInGrace = time.Second

// promise is an event the meter holds the agent to: a sign-out answered
// 0x90, or a sign-in reported (0x00E1) more than signInGrace before the
// cut.
type promise struct {
	key      string // outbox type|licence
	signIn   bool
	boot     int
	answered time.Time // sign-out: the 0x90; sign-in: the report written
}

// meterState is the meter's memory across boots: the event it is on, and
// whether it was sent at all (a sign-out then goes again as 0x00F1).
type meterState struct {
	driver  int
	signOut bool
	tried   bool
	at      time.Time // the shift's sign-in time
}

func (s *meterState) shift() metersim.Shift { return harness.ShiftOf(s.driver, s.at) }

func (s *meterState) key() string {
	typ := punch.SignIn
	if s.signOut {
		typ = punch.SignOut
	}
	return typ + "|" + harness.Licence(s.driver)
}

func (s *meterState) advance() {
	s.tried = false
	if s.signOut {
		s.driver++
		s.signOut = false
		s.at = time.Now()
		return
	}
	s.signOut = true
}

// drive runs the meter on conn until ctx ends, sending the shifts' events
// one after the other and recording each promise as it is answered.
func drive(ctx context.Context, conn net.Conn, st *meterState, boot int, seed uint64, record func(promise), answered chan<- struct{}) {
	m := metersim.New(conn, metersim.Options{AnswerTimeout: 500 * time.Millisecond, Seed: seed})
	defer m.Close()
	first := true
	for ctx.Err() == nil {
		if st.signOut {
			// A sign-out reported before and not answered goes again as
			// 0x00F1, without a request.
			res, err := m.SignOut(ctx, st.shift(), metersim.Resend(st.tried))
			st.tried = st.tried || res.Sends > 0
			if err != nil || !res.OK() {
				continue
			}
			record(promise{key: st.key(), boot: boot, answered: time.Now()})
		} else {
			// The meter asks who drives (0x00E0) until answered, then
			// reports the sign-in once.
			res, err := m.SignIn(ctx, st.shift())
			if err != nil || res.SentAt.IsZero() {
				continue // the request went unanswered: ask again
			}
			record(promise{key: st.key(), signIn: true, boot: boot, answered: res.SentAt})
		}
		st.advance()
		if first {
			first = false
			close(answered)
		}
	}
}

// outcome is what a boot found on the disk the previous cut left.
type outcome struct {
	counts    map[string]int // records per type|licence
	held      map[string]int // events in the spill file, per type|licence
	files     []string
	exportErr string // the export's message when it failed
	corrupt   bool   // the export or a .corrupt-* file says the outbox was set aside or unreadable
}

// readOutcome waits for the VM's listing of the outbox (before the agent
// runs) and parses it.
func readOutcome(vm *VM) (outcome, int, error) {
	_, end, err := vm.WaitLine(0, "PC run", bootTimeout)
	if err != nil {
		if l, _, ferr := vm.WaitLine(0, "PC fail", 0); ferr == nil {
			return outcome{}, 0, fmt.Errorf("%w: %s", err, l)
		}
		return outcome{}, 0, err
	}
	o := outcome{counts: map[string]int{}, held: map[string]int{}}
	for _, l := range vm.Lines(0)[:end+1] {
		switch {
		case strings.HasPrefix(l, "PC files"):
			o.files = strings.Fields(strings.TrimPrefix(l, "PC files"))
		case strings.HasPrefix(l, "PC recs "):
			f := strings.Fields(l)
			a, b, ok := strings.Cut(f[len(f)-1], "-")
			first, err1 := strconv.ParseUint(a, 10, 64)
			last, err2 := strconv.ParseUint(b, 10, 64)
			if len(f) != 4 || !ok || err1 != nil || err2 != nil || last < first || last-first > 1e6 {
				return outcome{}, 0, fmt.Errorf("bad listing line %q", l)
			}
			for n := first; n <= last; n++ {
				o.counts[f[2]+"|"+strconv.FormatUint(n, 10)]++
			}
		case strings.HasPrefix(l, "PC rec "):
			f := strings.Fields(l)
			if len(f) == 4 {
				o.counts[f[2]+"|"+f[3]]++
			} else {
				o.corrupt = true
			}
		case strings.HasPrefix(l, "PC held "):
			f := strings.Fields(l)
			if len(f) == 4 {
				o.held[f[2]+"|"+f[3]]++
			} else {
				o.corrupt = true // damaged lines: an event may be lost
			}
		case strings.HasPrefix(l, "PC export exit="):
			code, msg, _ := strings.Cut(strings.TrimPrefix(l, "PC export exit="), " ")
			if code != "0" {
				o.exportErr = msg
				// No outbox at all is a loss (counted by key), not a
				// corrupt file.
				if !strings.Contains(msg, "no outbox at") {
					o.corrupt = true
				}
			}
		}
	}
	for _, f := range o.files {
		if strings.Contains(f, ".corrupt-") {
			o.corrupt = true
		}
	}
	return o, end, nil
}

// tally is the suite's accounting over all cuts.
type tally struct {
	cuts, early, torn int
	promised          int
	lost              []string // keys, each once
	lostAt            []int    // the cut after which each was found missing
	duplicates        int
	dupsPerCut        []int
	corrupt           []string // per affected cut, what was seen
	droppedBlocks     int
	dirtyCuts         int // cuts that found writes in the cache
	freshSignIns      int // sign-ins reported within signInGrace of a cut: not counted
	inSpill           int // promised events found in the spill file only, at a boot
}

// TestPowerCut cuts the power of a VM running the agent at random moments,
// loses the disk's write cache (wholly or torn), boots again and checks
// with the agent's own export that every promised event is on the disk.
func TestPowerCut(t *testing.T) {
	if *cuts <= 0 {
		t.Skip("on demand: scripts/powercut.sh N (-powercut.cuts=N)")
	}
	if _, ok := mutantTags[*mutant]; !ok {
		t.Fatalf("unknown mutant %q: nosync, ackfirst or nobarrier", *mutant)
	}
	s := *seed
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	rng := rand.New(rand.NewPCG(s, s>>1|1))
	mountOpts := ""
	if *mutant == "nobarrier" {
		mountOpts = "nobarrier"
	}
	r := newRig(t, *mutant, mountOpts)
	t.Logf("seed %d, accel %s, mutant %q, %d cuts", s, r.vmcfg.Accel, *mutant, *cuts)

	var (
		mu       sync.Mutex
		promises []promise
		tl       tally
		st       = meterState{driver: 1, at: time.Now()}
		lostSeen = map[string]bool{}
		corrupts = map[string]bool{}
		prevDups = 0
	)
	start := time.Now()
	for boot := 0; boot <= *cuts; boot++ {
		bootAt := time.Now()
		vm, err := StartVM(r.vmcfg)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := r.acceptMeter(30 * time.Second)
		if err != nil {
			vm.Kill()
			t.Fatalf("boot %d: qemu did not connect the meter line: %v\n%s", boot, err, strings.Join(vm.Lines(0), "\n"))
		}
		o, _, err := readOutcome(vm)
		if err != nil {
			vm.Kill()
			t.Fatalf("boot %d: %v\nconsole:\n%s", boot, err, strings.Join(vm.Lines(0), "\n"))
		}

		listed := time.Since(bootAt)
		// The check of the previous cut.
		dups := 0
		for _, n := range o.counts {
			dups += n - 1
		}
		if boot > 0 {
			tl.dupsPerCut = append(tl.dupsPerCut, max(dups-prevDups, 0))
		}
		prevDups = dups
		tl.duplicates = dups
		mu.Lock()
		for _, p := range promises {
			if o.counts[p.key] == 0 && o.held[p.key] > 0 {
				tl.inSpill++
				t.Logf("cut %d: %s in the spill file, not yet in the outbox", boot, p.key)
			}
			if o.counts[p.key] == 0 && o.held[p.key] == 0 && !lostSeen[p.key] {
				lostSeen[p.key] = true
				tl.lost = append(tl.lost, p.key)
				tl.lostAt = append(tl.lostAt, boot)
				t.Logf("cut %d: LOST %s (answered 0x90 in boot %d at %s)", boot, p.key, p.boot, p.answered.Format("15:04:05.000"))
			}
		}
		tl.promised = len(promises)
		mu.Unlock()
		if o.corrupt {
			what := fmt.Sprintf("cut %d: files %v, export: %s", boot, o.files, o.exportErr)
			if !corrupts[what] {
				corrupts[what] = true
				tl.corrupt = append(tl.corrupt, what)
				t.Logf("CORRUPT %s", what)
			}
		}
		if *mutant != "" && (len(tl.lost) > 0 || len(tl.corrupt) > 0) {
			vm.Kill()
			t.Logf("mutant %s caught after %d cut(s): %d lost, %d corrupt outcomes", *mutant, boot, len(tl.lost), len(tl.corrupt))
			fmt.Printf("FIGURES powercut mutant=%s caught_after_cuts=%d lost=%d corrupt=%d seed=%d\n", *mutant, boot, len(tl.lost), len(tl.corrupt), s)
			return
		}
		if boot == *cuts {
			vm.Kill()
			conn.Close()
			break
		}

		// Run the meter, then cut.
		if _, _, err := vm.WaitLine(0, "PC run", bootTimeout); err != nil {
			vm.Kill()
			t.Fatalf("boot %d: %v", boot, err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		answered := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			drive(ctx, conn, &st, boot, rng.Uint64(), func(p promise) {
				mu.Lock()
				promises = append(promises, p)
				mu.Unlock()
			}, answered)
		}()
		var delay time.Duration
		if rng.IntN(earlyCutRate) == 0 {
			tl.early++
			delay = time.Duration(rng.Int64N(int64(1500 * time.Millisecond)))
		} else {
			select {
			case <-answered:
			case <-time.After(firstAnswer):
				vm.Kill()
				cancel()
				t.Fatalf("boot %d: the agent answered nothing within %s\nconsole:\n%s", boot, firstAnswer, strings.Join(vm.Lines(0), "\n"))
			}
			delay = time.Duration(rng.Int64N(int64(maxCutDelay)))
		}
		ran := time.Since(bootAt)
		time.Sleep(delay)
		if testing.Verbose() {
			t.Logf("boot %d: listing after %s, agent answering after %s, cut %s later; %d records",
				boot, listed.Round(100*time.Millisecond), ran.Round(100*time.Millisecond), delay.Round(100*time.Millisecond), len(o.counts))
		}
		if l, _, err := vm.WaitLine(0, "PC agent exit", 0); err == nil {
			vm.Kill()
			cancel()
			t.Fatalf("boot %d: the agent exited by itself: %s\nconsole:\n%s", boot, l, strings.Join(vm.Lines(0), "\n"))
		}
		vm.Kill() // the power cut
		cutAt := time.Now()
		cancel()
		conn.Close()
		wg.Wait()
		r.nbd.Disconnect()
		var torn func() bool
		if rng.IntN(2) == 0 {
			torn = CoinToss(rng)
			tl.torn++
		}
		dropped, keptBlocks := r.disk.Cut(torn)
		tl.droppedBlocks += dropped
		if dropped+keptBlocks > 0 {
			tl.dirtyCuts++
		}
		tl.cuts++
		mu.Lock()
		// A sign-in reported less than signInGrace before the cut is no
		// promise yet.
		kept := promises[:0]
		for _, p := range promises {
			if p.signIn && cutAt.Sub(p.answered) <= signInGrace {
				tl.freshSignIns++
				continue
			}
			if !p.answered.After(cutAt) {
				kept = append(kept, p)
			}
		}
		promises = kept
		mu.Unlock()
	}
	elapsed := time.Since(start)
	if errs := r.nbd.Errors(); len(errs) > 0 {
		t.Errorf("NBD protocol errors: %v", errs)
	}

	sort.Ints(tl.dupsPerCut)
	ds := r.disk.Stats()
	t.Logf("%d cuts (%d while the agent started, %d torn) in %s: %.1f cuts/min", tl.cuts, tl.early, tl.torn,
		elapsed.Round(time.Second), float64(tl.cuts)/elapsed.Minutes())
	t.Logf("events promised %d, lost %d, outboxes set aside or unreadable %d; duplicate records %d (%.2f per cut, max %d in one)",
		tl.promised, len(tl.lost), len(tl.corrupt), tl.duplicates, float64(tl.duplicates)/float64(max(tl.cuts, 1)), maxOf(tl.dupsPerCut))
	t.Logf("sign-ins reported within %s of a cut, not counted: %d", signInGrace, tl.freshSignIns)
	t.Logf("promised events found only in the spill file at a boot (stored by the agent first): %d", tl.inSpill)
	t.Logf("disk: %d writes (%d FUA), %d flushes; %d cuts found unflushed writes, %d cached blocks dropped", ds.Writes, ds.FUAWrites, ds.Flushes, tl.dirtyCuts, tl.droppedBlocks)
	fmt.Printf("FIGURES powercut cuts=%d minutes=%.1f cuts_per_min=%.1f promised=%d lost=%d set_aside=%d duplicates=%d dup_per_cut=%s torn=%d early=%d dirty_cuts=%d accel=%s seed=%d\n",
		tl.cuts, elapsed.Minutes(), float64(tl.cuts)/elapsed.Minutes(), tl.promised, len(tl.lost), len(tl.corrupt), tl.duplicates,
		strconv.FormatFloat(float64(tl.duplicates)/float64(max(tl.cuts, 1)), 'f', 2, 64), tl.torn, tl.early, tl.dirtyCuts, r.vmcfg.Accel, s)

	if *mutant != "" {
		t.Fatalf("mutant %s NOT caught in %d cuts: the suite cannot see this fault", *mutant, tl.cuts)
	}
	if len(tl.lost) > 0 {
		t.Errorf("seed %d: %d promised events lost: %v (after cuts %v)", s, len(tl.lost), tl.lost, tl.lostAt)
	}
	for _, c := range tl.corrupt {
		t.Errorf("seed %d: outbox set aside or unreadable: %s", s, c)
	}
	if tl.promised < tl.cuts {
		t.Errorf("only %d events promised over %d cuts: the suite did not exercise ingest", tl.promised, tl.cuts)
	}
}

func maxOf(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}
