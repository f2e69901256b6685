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
// promise itself: of the sends it lets through, no n = ⌊perSecond⌋ (at
// least 1) fall within n/perSecond plus jitter of each other, so that
// WeChat Pay counts at most the rate in any second even when punches
// reach it up to jitter later than they left, unevenly. The bucket alone would,
// after a late wake-up (a busy CPU, a GC pause), send the late punch
// together with the next ones, all on time, and a one-second window at
// WeChat Pay could count one or a few more than the rate.
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
	if err := l.bucket.Wait(ctx); err != nil {
		return err
	}
	return l.win.wait(ctx)
}

// window remembers the last n send times and lets a send out only once
// the n-th last is span ago: at most n sends in any span.
type window struct {
	span time.Duration
	now  func() time.Time

	mu    sync.Mutex
	sends []time.Time // ring of the last n send times
	next  int
}

func newWindow(perSecond float64, jitter time.Duration) *window {
	n := max(1, int(math.Floor(perSecond)))
	return &window{
		span:  time.Duration(float64(n)/perSecond*float64(time.Second)) + jitter,
		now:   time.Now,
		sends: make([]time.Time, n),
	}
}

func (w *window) wait(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock() // one waiter at a time: they go in turn
	for {
		now := w.now()
		free := w.sends[w.next].Add(w.span)
		if !now.Before(free) {
			w.sends[w.next] = now
			w.next = (w.next + 1) % len(w.sends)
			return nil
		}
		if err := sleep(ctx, free.Sub(now)); err != nil {
			return err
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

// slotSeconds is the interval between two slots at perSecond.
func slotSeconds(perSecond float64) float64 { return 1 / perSecond }
