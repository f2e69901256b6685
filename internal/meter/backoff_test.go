package meter

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	// With the random part at its least and at its most, the waits double
	// from min and stop at max.
	lowest := newBackoff(100*time.Millisecond, time.Second, func(int64) int64 { return 0 })
	highest := newBackoff(100*time.Millisecond, time.Second, func(n int64) int64 { return n - 1 })
	wantHigh := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range wantHigh {
		w *= time.Millisecond
		if got := lowest.next(); got != w-w/2 {
			t.Errorf("attempt %d lowest = %v, want %v", i, got, w-w/2)
		}
		if got := highest.next(); got != w {
			t.Errorf("attempt %d highest = %v, want %v", i, got, w)
		}
	}
	lowest.reset()
	if got := lowest.next(); got != 50*time.Millisecond {
		t.Errorf("after reset = %v, want 50ms", got)
	}
	// Many attempts do not overflow into short or negative waits.
	b := newBackoff(time.Second, time.Minute, func(int64) int64 { return 0 })
	for range 100 {
		if got := b.next(); got < 500*time.Millisecond || got > time.Minute {
			t.Fatalf("wait %v out of range", got)
		}
	}
}
