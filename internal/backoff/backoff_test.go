package backoff

import (
	"context"
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	full := Policy{Min: time.Second, Max: 5 * time.Minute}
	equal := Policy{Min: 100 * time.Millisecond, Max: time.Second, Floor: 0.5}
	for _, tc := range []struct {
		name string
		p    Policy
		n    int
		r    float64
		want time.Duration
	}{
		{"r=0 is the ceiling", full, 1, 0, time.Second},
		{"full jitter halfway", full, 1, 0.5, 500 * time.Millisecond},
		{"doubles per failure", full, 3, 0, 4 * time.Second},
		{"capped", full, 20, 0, 5 * time.Minute},
		{"no overflow", full, 200, 0, 5 * time.Minute},
		{"n below 1 is the first retry", full, 0, 0, time.Second},
		{"never zero", full, 1, 0.9999999999, 1},
		{"equal jitter: ceiling at r=0", equal, 1, 0, 100 * time.Millisecond},
		{"equal jitter: half stays fixed", equal, 1, 0.9999999999, 50 * time.Millisecond},
		{"equal jitter: capped", equal, 10, 0.5, 750 * time.Millisecond},
		{"Max below Min is Min", Policy{Min: time.Second, Max: time.Millisecond}, 5, 0, time.Second},
		{"zero policy waits nothing", Policy{}, 3, 0.5, 0},
	} {
		if got := tc.p.Delay(tc.n, tc.r); got != tc.want {
			t.Errorf("%s: Delay(n=%d, r=%v) = %s, want %s", tc.name, tc.n, tc.r, got, tc.want)
		}
	}
}

// TestBackoffSchedule drives a Backoff with an injected random source and
// clock: the waits double from Min, stop at Max, and Reset starts over.
func TestBackoffSchedule(t *testing.T) {
	rs := []float64{0, 0.5, 0, 0.9999999999, 0, 0}
	var slept []time.Duration
	b := &Backoff{
		Policy: Policy{Min: 100 * time.Millisecond, Max: time.Second, Floor: 0.5},
		Rand:   func() float64 { r := rs[0]; rs = rs[1:]; return r },
		After: func(d time.Duration) <-chan time.Time {
			slept = append(slept, d)
			c := make(chan time.Time, 1)
			c <- time.Time{}
			return c
		},
	}
	for range 5 {
		if !b.Wait(context.Background()) {
			t.Fatal("Wait returned false with a live context")
		}
	}
	b.Reset()
	b.Wait(context.Background())
	ms := time.Millisecond
	want := []time.Duration{100 * ms, 150 * ms, 400 * ms, 400 * ms, time.Second, 100 * ms}
	if len(slept) != len(want) {
		t.Fatalf("slept %v, want %v", slept, want)
	}
	for i := range want {
		if slept[i] != want[i] {
			t.Errorf("wait %d = %s, want %s (all: %v)", i+1, slept[i], want[i], slept)
		}
	}
}

// TestWaitCancelled: a cancelled context ends the wait at once, on a clock
// that never fires.
func TestWaitCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := &Backoff{Policy: Policy{Min: time.Hour, Max: time.Hour}, After: func(time.Duration) <-chan time.Time { return nil }}
	if b.Wait(ctx) {
		t.Fatal("Wait = true after cancel")
	}
}

// TestManyAttempts: a long outage never overflows into short or negative
// waits.
func TestManyAttempts(t *testing.T) {
	b := &Backoff{Policy: Policy{Min: time.Second, Max: time.Minute, Floor: 0.5}, Rand: func() float64 { return 0.9999999999 }}
	for i := range 1000 {
		if got := b.Next(); got < 30*time.Second-1 && i > 6 || got <= 0 || got > time.Minute {
			t.Fatalf("attempt %d: wait %v out of range", i+1, got)
		}
	}
}
