package gateway

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestQueueRoundRobin: a terminal with a long backlog gets one turn in
// each round, not the whole queue. Released punches hold their place ahead
// (they never take a token here), so exactly the first Ahead are released.
func TestQueueRoundRobin(t *testing.T) {
	q := NewQueue(1000, 10*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	released := make(chan string, 64)
	enqueue := func(key string) {
		go func() {
			if _, _, err := q.Wait(ctx, key); err == nil {
				released <- key
			}
		}()
	}
	for range 20 {
		enqueue("A")
	}
	waitDepth(t, q, 20)
	enqueue("B")
	enqueue("C")
	waitDepth(t, q, 22)
	go q.Run(ctx)
	got := map[string]int{}
	for range Ahead {
		got[<-released]++
	}
	if got["B"] != 1 || got["C"] != 1 {
		t.Fatalf("first %d released: %v; B and C waited behind A's backlog", Ahead, got)
	}
	select {
	case k := <-released:
		t.Fatalf("released %s beyond the %d places ahead", k, Ahead)
	case <-time.After(50 * time.Millisecond):
	}
}

// TestQueueTimeoutSpreadsRetryAfter: past max_wait a punch leaves the
// queue with ErrQueueTimeout and a Retry-After that grows one slot per
// punch turned away, from the queue's drain time.
func TestQueueTimeoutSpreadsRetryAfter(t *testing.T) {
	q := NewQueue(2, 50*time.Millisecond) // nothing is released: Run is not started
	ctx := context.Background()
	var ras []time.Duration
	for range 6 {
		// Others waiting ahead, for good: queued directly, they cannot
		// time out themselves while a loaded machine starts the rest.
		q.push("ahead", &ticket{ready: make(chan struct{})})
	}
	for range 4 {
		_, ra, err := q.Wait(ctx, "late")
		if !errors.Is(err, ErrQueueTimeout) {
			t.Fatalf("err %v, want ErrQueueTimeout", err)
		}
		ras = append(ras, ra)
	}
	// 6 ahead at 2/s: 3 s; then one slot (0.5 s) apart, rounded up.
	if ras[0] < 3*time.Second || ras[3] < ras[0]+time.Second {
		t.Fatalf("Retry-Afters %v: want from 3 s, growing half a second per punch", ras)
	}
}

func waitDepth(t *testing.T, q *Queue, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for q.Depth() != n {
		if time.Now().After(deadline) {
			t.Fatalf("depth %d, want %d", q.Depth(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestLocalLimiterWindow: however late its callers, no ⌊rate⌋ sends fall
// within one second plus jitter.
func TestLocalLimiterWindow(t *testing.T) {
	const rate = 50
	jitter := 20 * time.Millisecond
	l := NewLocalLimiter(rate, jitter)
	ctx := context.Background()
	var sends []time.Time
	for i := range 120 {
		if i%17 == 0 {
			time.Sleep(80 * time.Millisecond) // a late caller: the bucket would catch up in a burst
		}
		if err := l.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		sends = append(sends, time.Now())
	}
	for i := rate; i < len(sends); i++ {
		if gap := sends[i].Sub(sends[i-rate]); gap < time.Second+jitter {
			t.Fatalf("sends %d and %d are %s apart, want ≥ %s", i-rate, i, gap, time.Second+jitter)
		}
	}
}
