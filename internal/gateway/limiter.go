package gateway

import (
	"context"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter hands out the fleet's tokens for WeChat Pay. Wait blocks until
// one is taken (nil) or ctx ends.
type Limiter interface {
	Wait(ctx context.Context) error
}

// localLimiter is the in-process limit: a token bucket at perSecond with
// a burst of one (rate.Limiter), which spaces punches evenly and makes up
// for a waiter that woke late, and behind it a window that holds the
// promise itself: of the sends it lets through, at most n = ⌊perSecond⌋
// (at least 1) fall within any span of one second plus jitter (for a rate
// below one a second: one send within 1/perSecond plus jitter). So WeChat
// Pay counts at most the rate
// in any second even when punches reach it up to jitter later than they
// left, unevenly. The bucket alone would, after a late wake-up (a busy
// CPU, a GC pause), send the late punch together with the next ones, all
// on time, and a one-second window at WeChat Pay could count one or a few
// more than the rate. The gateway takes its tokens as requests are
// written (wireGate), so a token's time is its punch's on the wire.
type localLimiter struct {
	bucket *rate.Limiter
	win    *window
}

// NewLocalLimiter is the in-process limit of perSecond punches a second,
// held within any window of one second plus jitter (see Limit.Jitter).
func NewLocalLimiter(perSecond float64, jitter time.Duration) Limiter {
	return localLimiter{bucket: rate.NewLimiter(rate.Limit(perSecond), 1), win: newWindow(perSecond, jitter)}
}

func (l localLimiter) Wait(ctx context.Context) error {
	_, err := l.send(ctx, nil)
	return err
}

// send takes a token and makes write, the request's first write to WeChat
// Pay, under the window's lock: the send's time is when write returned,
// so the data was in the kernel by then (see window.send).
func (l localLimiter) send(ctx context.Context, write func() (int, error)) (int, error) {
	if err := l.bucket.Wait(ctx); err != nil {
		return 0, err
	}
	return l.win.send(ctx, write)
}

// wireLimiter is a Limiter that makes the write itself, so that its
// promise holds at the write: the in-process limit (wireConn uses it).
type wireLimiter interface {
	Limiter
	send(ctx context.Context, write func() (int, error)) (int, error)
}

// window remembers the last n send times and lets a send out only once
// the n-th last is span ago: at most n sends in any span.
//
// A send's time is taken when its write has returned, and sends are made
// one at a time under the lock. So the k-th write starts no earlier than
// span after the (k-n)-th had returned, however long a thread was
// descheduled between the check and the write or within the write: the
// bytes of any n+1 sends reach the kernel at least span apart. (A punch
// request, about 1 KB, leaves the HTTP transport in one write.)
type window struct {
	span  time.Duration
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error

	mu    sync.Mutex
	sends []time.Time // ring of the last n send times
	next  int
}

func newWindow(perSecond float64, jitter time.Duration) *window {
	n := max(1, int(math.Floor(perSecond)))
	return &window{
		span:  max(time.Second, time.Duration(float64(n)/perSecond*float64(time.Second))) + jitter,
		now:   time.Now,
		sleep: sleep,
		sends: make([]time.Time, n),
	}
}

// send waits for the window to allow a send, makes write (nil: none) and
// records the time it returned. An error is ctx ending, before any write.
func (w *window) send(ctx context.Context, write func() (int, error)) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock() // one sender at a time: they go in turn
	for {
		now := w.now()
		free := w.sends[w.next].Add(w.span)
		if !now.Before(free) {
			var n int
			var err error
			if write != nil {
				n, err = write()
			}
			w.sends[w.next] = w.now()
			w.next = (w.next + 1) % len(w.sends)
			return n, err
		}
		if err := w.sleep(ctx, free.Sub(now)); err != nil {
			return 0, err
		}
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
