package uploader

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"taxi-agent/internal/outbox"
)

// spreadError reports why waits (all from clients that failed at the same
// instant) are not spread uniformly over (lo, hi]: outside the interval, a
// Kolmogorov–Smirnov distance from uniform beyond what chance allows, or a
// crowd in one hundredth of the interval. The thresholds are set so that
// truly uniform waits fail with probability below one in a million.
func spreadError(waits []time.Duration, lo, hi time.Duration) error {
	n := len(waits)
	s := slices.Clone(waits)
	slices.Sort(s)
	if s[0] <= lo || s[n-1] > hi {
		return fmt.Errorf("waits span [%s, %s], want within (%s, %s]", s[0], s[n-1], lo, hi)
	}
	width := float64(hi - lo)
	d := 0.0
	for i, w := range s {
		f := float64(w-lo) / width
		d = max(d, math.Abs(float64(i+1)/float64(n)-f), math.Abs(f-float64(i)/float64(n)))
	}
	// KS critical value at α = 1e-6: sqrt(-ln(α/2)/2) / sqrt(n).
	if limit := math.Sqrt(-math.Log(0.5e-6)/2) / math.Sqrt(float64(n)); d > limit {
		return fmt.Errorf("KS distance from uniform %.3f, above %.3f", d, limit)
	}
	// The most clients retrying within any window of 1% of the interval:
	// 10 expected; 40 has a Poisson tail far below 1e-6.
	win := (hi - lo) / 100
	crowd, j := 0, 0
	for i := range s {
		for s[i]-s[j] > win {
			j++
		}
		crowd = max(crowd, i-j+1)
	}
	if crowd > 40 {
		return fmt.Errorf("%d of %d clients retry within %s of each other", crowd, n, win)
	}
	return nil
}

func TestSpreadCheckCatchesLockstep(t *testing.T) {
	const n = 1000
	lockstep := make([]time.Duration, n)
	narrow := make([]time.Duration, n)
	for i := range n {
		lockstep[i] = 2 * time.Second
		narrow[i] = 2*time.Second - time.Duration(i)*time.Millisecond/50 // ±1% jitter around the ceiling
	}
	for name, w := range map[string][]time.Duration{"lockstep": lockstep, "narrow jitter": narrow} {
		if err := spreadError(w, 0, 2*time.Second); err == nil {
			t.Errorf("%s passed the spread check", name)
		}
	}
}

// TestJitterSpreadsRetries: 1 000 terminals, each an Uploader as shipped
// (default jitter source), fail at the same instant; their next attempts
// must be spread, not in lockstep, for every kind of wait.
func TestJitterSpreadsRetries(t *testing.T) {
	const clients = 1000
	auth := publicKeyAuth(t)
	ups := make([]*Uploader, clients)
	for i := range ups {
		u, err := New(Config{BaseURL: "https://127.0.0.1:1", RetryAfterCap: time.Minute}, newFakeStore(time.Now), auth)
		if err != nil {
			t.Fatal(err)
		}
		ups[i] = u
	}
	at := time.Date(2026, 11, 28, 10, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		attempts int // failures before this one
		err      *DeliveryError
		throttle time.Duration // the pace after a 429
		lo, hi   time.Duration
	}{
		{"first failure, 500", 0, &DeliveryError{Kind: KindServer, Status: 500}, 0, 0, time.Second},
		{"fourth failure, network", 3, &DeliveryError{Kind: KindNetwork}, 0, 0, 8 * time.Second},
		{"tenth failure, at the cap", 9, &DeliveryError{Kind: KindUnverified}, 0, 0, 5 * time.Minute},
		{"429 with Retry-After 3600, pace 4s", 9, &DeliveryError{Kind: KindThrottled, Status: 429, RetryAfter: time.Hour}, 4 * time.Second, time.Minute, time.Minute + 4*time.Second},
		{"401 held", 0, &DeliveryError{Kind: KindHeld, Status: 401}, 0, 4*time.Minute + 30*time.Second - 1, 5*time.Minute + 30*time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			waits := make([]time.Duration, clients)
			for i, u := range ups {
				rec := outbox.Record{ID: 1, Attempts: tc.attempts}
				waits[i] = u.sched.next(rec, tc.err, at, u.rand(), tc.throttle).Sub(at)
			}
			if err := spreadError(waits, tc.lo, tc.hi); err != nil {
				t.Error(err)
			}
		})
	}
}
