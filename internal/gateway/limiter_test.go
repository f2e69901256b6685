package gateway

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeTime is a clock that moves only when a waiter sleeps, and then as
// late as a busy machine would wake it.
type fakeTime struct {
	mu   sync.Mutex
	t    time.Time
	late func() time.Duration
}

func (f *fakeTime) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeTime) advance(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

func (f *fakeTime) sleep(_ context.Context, d time.Duration) error {
	f.advance(d + f.late())
	return nil
}

// mostWithin is the most times of ts (sorted) within any half-open span
// [t, t+span).
func mostWithin(ts []time.Time, span time.Duration) int {
	best, j := 0, 0
	for i := range ts {
		for j < len(ts) && ts[j].Before(ts[i].Add(span)) {
			j++
		}
		best = max(best, j-i)
	}
	return best
}

// TestWindowBound: whatever the callers' timing, however late their sleeps
// end and however long a write is descheduled before or after its bytes
// reach the kernel, those bytes hold ⌊R⌋ in any second plus jitter, so that
// punches reaching WeChat Pay up to jitter after that, in any order, count
// at most ⌊R⌋ in any second there. Integer, fractional and sub-one rates;
// callers that bunch up; sleeps and writes up to 300 ms late.
func TestWindowBound(t *testing.T) {
	const jitter = 100 * time.Millisecond
	for _, perSecond := range []float64{0.5, 1, 2.5, 40, 100} {
		for seed := range uint64(5) {
			t.Run(fmt.Sprintf("R=%g/seed=%d", perSecond, seed), func(t *testing.T) {
				rnd := rand.New(rand.NewPCG(seed, 16))
				clock := &fakeTime{t: time.Unix(1_800_000_000, 0), late: func() time.Duration {
					if rnd.IntN(4) == 0 {
						return time.Duration(rnd.Int64N(int64(300 * time.Millisecond)))
					}
					return 0
				}}
				w := newWindow(perSecond, jitter)
				w.now, w.sleep = clock.now, clock.sleep
				n := max(1, int(math.Floor(perSecond)))
				var sends, arrivals []time.Time
				for range 40 * n {
					// Callers come in bursts and pauses.
					if rnd.IntN(n+3) == 0 {
						clock.advance(time.Duration(rnd.Int64N(int64(1500 * time.Millisecond))))
					}
					// The write may be descheduled before, in or after
					// its syscall: its bytes reach the kernel somewhere
					// within it, and the network may add up to jitter.
					var inKernel time.Time
					if _, err := w.send(context.Background(), func() (int, error) {
						clock.advance(clock.late())
						inKernel = clock.now()
						clock.advance(clock.late())
						return 0, nil
					}); err != nil {
						t.Fatal(err)
					}
					sends = append(sends, inKernel)
					arrivals = append(arrivals, inKernel.Add(time.Duration(rnd.Int64N(int64(jitter+1)))))
				}
				span := max(time.Second, time.Duration(float64(n)/perSecond*float64(time.Second))) + jitter
				if got := mostWithin(sends, span); got > n {
					t.Errorf("%d sends within %s, want ≤ %d", got, span, n)
				}
				slices.SortFunc(arrivals, func(a, b time.Time) int { return a.Compare(b) })
				if got := mostWithin(arrivals, time.Second); float64(got) > max(1, perSecond) {
					t.Errorf("%d arrivals in one second at up to %s after their send, want ≤ R = %g", got, jitter, perSecond)
				}
			})
		}
	}
}
