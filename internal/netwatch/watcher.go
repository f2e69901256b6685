package netwatch

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"taxi-agent/internal/backoff"
)

// DefaultJitter is the longest wait before OnUp when Options.Jitter is zero.
const DefaultJitter = 500 * time.Millisecond

// Options configures a Watcher. The zero value watches and calls nothing.
type Options struct {
	// Logger receives the watcher's logs; nil discards them.
	Logger *slog.Logger
	// OnUp is called when connectivity was likely gained: a non-loopback
	// link comes up (IFF_UP|IFF_RUNNING), a global address is added, or a
	// default route is added. It is called after a random wait of up to
	// Jitter, from Run's goroutine, so it must not block (a non-blocking
	// send on a wake channel). Up changes that arrive during the wait are
	// folded into the pending call, which gets the first of them.
	OnUp func(Change)
	// OnChange, if set, is called at once for every change, up or down,
	// from Run's goroutine; it must not block.
	OnChange func(Change)
	// Jitter bounds the random wait before OnUp, to spread a fleet that
	// regains the network at the same instant. Zero means DefaultJitter;
	// negative means none.
	Jitter time.Duration
	// Rand draws the jitter; nil uses math/rand/v2's global source.
	Rand *rand.Rand
	// Now stamps changes; nil uses time.Now.
	Now func() time.Time
}

// Watcher watches rtnetlink link, address and default-route changes and
// wakes the caller when connectivity likely returned.
type Watcher struct {
	opts    Options
	log     *slog.Logger
	dial    func() (conn, error) // dialNetlink; replaced in tests
	running atomic.Bool
	ready   chan struct{} // closed once the initial dump is applied, or Run gave up

	mu      sync.Mutex
	last    Change
	hasLast bool
	err     error
}

// New returns a Watcher; Run starts it.
func New(opts Options) *Watcher {
	if opts.Jitter == 0 {
		opts.Jitter = DefaultJitter
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Watcher{
		opts:  opts,
		log:   log.With("component", "netwatch"),
		dial:  dialNetlink,
		ready: make(chan struct{}),
	}
}

// Last returns the last change seen, for `agent status`.
func (w *Watcher) Last() (Change, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last, w.hasLast
}

// Err reports why the Watcher is not watching: an error wrapping
// ErrUnavailable once netlink could not be opened or failed, else nil.
func (w *Watcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Run watches until ctx is done, then returns nil. It opens its netlink
// socket in the network namespace of the calling thread. If netlink is
// unavailable (EPERM, EAFNOSUPPORT, a seccomp filter, not Linux) or fails
// later, Run logs "netlink unavailable, falling back to backoff alone"
// once, records the cause for Err, and still returns nil only when ctx is
// done, so the caller runs on unchanged. Run returns ErrRunning if the
// Watcher is already running.
func (w *Watcher) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer w.running.Store(false)
	c, err := w.dial()
	if err != nil {
		w.fallBack(ctx, err)
		return nil
	}
	l := &loop{w: w, c: c, t: newTracker()}
	if err := l.run(ctx); err != nil {
		w.fallBack(ctx, err)
	}
	return nil
}

// fallBack records and logs why netlink is not used, then waits for ctx.
func (w *Watcher) fallBack(ctx context.Context, cause error) {
	w.mu.Lock()
	w.err = fmt.Errorf("%w: %w", ErrUnavailable, cause)
	w.mu.Unlock()
	w.log.Warn("netlink unavailable, falling back to backoff alone", "error", cause)
	w.markReady()
	<-ctx.Done()
}

func (w *Watcher) markReady() {
	select {
	case <-w.ready:
	default:
		close(w.ready)
	}
}

func (w *Watcher) record(c Change) {
	w.mu.Lock()
	w.last, w.hasLast = c, true
	w.mu.Unlock()
}

// jitter draws the wait before OnUp: uniform in (0, Jitter], the one-step
// full-jitter schedule of package backoff.
func (w *Watcher) jitter() time.Duration {
	if w.opts.Jitter <= 0 {
		return 0
	}
	r := rand.Float64
	if w.opts.Rand != nil {
		r = w.opts.Rand.Float64
	}
	return backoff.Policy{Min: w.opts.Jitter, Max: w.opts.Jitter}.Delay(1, r())
}
