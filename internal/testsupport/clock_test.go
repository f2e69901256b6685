package testsupport

import (
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	start := time.Date(2026, 11, 28, 2, 30, 0, 0, time.UTC)
	c := NewClock(start)
	soon, later := c.After(time.Second), c.After(time.Minute)
	if got := c.Sleepers(); len(got) != 2 || !got[0].Equal(start.Add(time.Second)) {
		t.Fatalf("Sleepers = %v", got)
	}
	c.Advance(time.Second)
	select {
	case at := <-soon:
		if !at.Equal(start.Add(time.Second)) {
			t.Errorf("timer fired at %v", at)
		}
	default:
		t.Fatal("a timer due now did not fire")
	}
	select {
	case <-later:
		t.Fatal("a timer due in a minute fired")
	default:
	}
	if id, since, _ := c.Boot(); id != "boot-1" || since != time.Second {
		t.Errorf("Boot = %s %v, want boot-1 1s: Advance moves the boot clock too", id, since)
	}
	// A step of the wall clock leaves the boot clock alone.
	c.Set(start.Add(time.Hour))
	if _, since, _ := c.Boot(); since != time.Second {
		t.Errorf("boot clock %v after a wall-clock step, want 1s", since)
	}
	if len(c.Sleepers()) != 0 {
		t.Errorf("timers left after the step: %v", c.Sleepers())
	}
	if got := <-c.After(0); !got.Equal(start.Add(time.Hour)) {
		t.Errorf("After(0) = %v, want now", got)
	}
}

func TestWaitSleeper(t *testing.T) {
	c := NewClock(time.Unix(0, 0))
	go func() {
		time.Sleep(10 * time.Millisecond)
		c.After(time.Minute)
	}()
	c.WaitSleeper(t, time.Unix(60, 0), 1)
	if at := c.WaitAnySleeper(t); !at.Equal(time.Unix(60, 0)) {
		t.Errorf("WaitAnySleeper = %v", at)
	}
}
