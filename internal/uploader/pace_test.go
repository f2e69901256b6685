package uploader

import (
	"testing"
	"time"
)

func TestPaceRisesPer429UpToAMinute(t *testing.T) {
	p := newPace(DefaultBackoffMin, DefaultBackoffMax)
	at := time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)
	// ×4 per 429 from BackoffMin; ×4 from 16 s is above the ceiling.
	want := []time.Duration{time.Second, 4 * time.Second, 16 * time.Second, time.Minute, time.Minute}
	for i, w := range want {
		if got := p.throttled(at); got != w {
			t.Fatalf("429 number %d: pace %s, want %s", i+1, got, w)
		}
	}
	// It halves every paceHalfLife without a 429, and spaces nothing once
	// below BackoffMin.
	if got := p.current(at.Add(paceHalfLife)); got != 30*time.Second {
		t.Errorf("pace %s after a half-life, want 30s", got)
	}
	if got := p.spacing(at.Add(6*paceHalfLife), 0.99); got != 0 {
		t.Errorf("spacing %s after six half-lives (pace below 1s), want 0", got)
	}
	if got := p.spacing(at, 0); got != 30*time.Second {
		t.Errorf("spacing %s right after the 429 with r=0, want half the pace, 30s", got)
	}
}

func TestPaceCeilingFollowsBackoffBounds(t *testing.T) {
	for _, c := range []struct {
		lo, hi, want time.Duration
	}{
		{time.Second, 5 * time.Minute, time.Minute},
		{time.Second, 20 * time.Second, 20 * time.Second},   // BackoffMax shorter than a minute
		{2 * time.Minute, 5 * time.Minute, 2 * time.Minute}, // BackoffMin longer than a minute
	} {
		if got := newPace(c.lo, c.hi).ceiling; got != c.want {
			t.Errorf("backoff %s–%s: pace ceiling %s, want %s", c.lo, c.hi, got, c.want)
		}
	}
}
