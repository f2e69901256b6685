package uploader

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"taxi-agent/internal/backoff"
	"taxi-agent/internal/outbox"
	"taxi-agent/internal/punch"
	"taxi-agent/internal/wechatpay"
)

// Store is what the drain loop needs of the outbox; *outbox.Outbox
// satisfies it.
type Store interface {
	// Head returns the oldest pending record, due or not.
	Head() (outbox.Record, bool, error)
	MarkDelivered(id uint64, at time.Time) error
	RecordFailure(id uint64, e outbox.AttemptError, next time.Time) error
	DeadLetter(id uint64, e outbox.AttemptError, reason string) error
	SetEventTime(id uint64, eventTime string) error
}

// idle is the wait for "until Wake".
const idle = time.Duration(math.MaxInt64)

// Uploader is the drain loop: it delivers the outbox head, records the
// outcome, and moves on, in strict order.
type Uploader struct {
	cfg    Config
	store  Store
	client *punchClient
	wire   *wireCounter
	sched  schedule
	log    *slog.Logger
	wake   chan struct{}

	running atomic.Bool
	randMu  sync.Mutex

	mu sync.Mutex
	st Status

	// Touched only by Run's goroutine.
	lastAttempt time.Time
	pace        pace
	notBefore   time.Time // the pace's spacing after a delivery
	unacked     *unacked
	health      health
	streak      rejectStreak
}

// rejectStreak counts the different events in a row refused with the same
// status and code.
type rejectStreak struct {
	key  string
	ids  int
	last uint64
}

// note adds a refusal of event id and returns the streak's length.
func (s *rejectStreak) note(id uint64, e *DeliveryError) int {
	k := fmt.Sprintf("%d %s", e.Status, e.Code)
	if k != s.key {
		*s = rejectStreak{key: k}
	}
	if id != s.last || s.ids == 0 {
		s.ids++
		s.last = id
	}
	return s.ids
}

// unacked is a delivery the outbox failed to record; it is recorded before
// anything is sent again.
type unacked struct {
	id uint64
	at time.Time
}

// New builds an Uploader over store, authenticating with auth. It checks
// cfg and loads the CA file; it sends nothing until Run.
func New(cfg Config, store Store, auth Authenticator) (*Uploader, error) {
	if store == nil || auth == nil {
		return nil, fmt.Errorf("new uploader: %w: store and authenticator are required", ErrConfig)
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("new uploader: %w", err)
	}
	wc := &wireCounter{}
	hc, err := newHTTPClient(cfg, wc, auth)
	if err != nil {
		return nil, fmt.Errorf("new uploader: %w", err)
	}
	u := &Uploader{
		cfg:   cfg,
		store: store,
		wire:  wc,
		sched: schedule{retry: backoff.Policy{Min: cfg.BackoffMin, Max: cfg.BackoffMax}, held: cfg.HeldRetry, retryAfterCap: cfg.RetryAfterCap},
		log:   cfg.Logger.With("component", "uploader"),
		wake:  make(chan struct{}, 1),
		pace:  newPace(cfg.BackoffMin, cfg.BackoffMax),
	}
	u.client = newPunchClient(cfg, auth, hc, u.rand)
	return u, nil
}

// Wake makes the loop look at the head now: a new event was enqueued, or
// connectivity returned. It never blocks, and wakes coalesce. A head in
// backoff is tried at once unless the server asked for the wait (429 or
// 503), and never sooner than BackoffMin after the previous attempt.
func (u *Uploader) Wake() {
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

// Run drains the outbox until ctx is cancelled. An attempt in flight at
// cancellation may finish within ShutdownGrace and is then recorded;
// after that it is abandoned and recorded as such. Run returns nil after
// shutdown, or ErrRunning if another Run is active.
func (u *Uploader) Run(ctx context.Context) error {
	if !u.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer u.running.Store(false)
	defer u.client.http.HTTPClient.CloseIdleConnections()
	u.log.Info("uploader started", "url", u.client.url)
	if r, ok := u.client.auth.(interface{ Run(context.Context) }); ok {
		var wg sync.WaitGroup
		wg.Go(func() { r.Run(ctx) })
		defer wg.Wait()
	}
	forced := false
	for ctx.Err() == nil {
		wait := u.step(ctx, &forced)
		if wait <= 0 {
			continue
		}
		if u.sleep(ctx, wait) {
			forced = true
		}
	}
	u.log.Info("uploader stopped")
	return nil
}

// sleep waits d (idle: until Wake) and reports whether Wake ended it.
func (u *Uploader) sleep(ctx context.Context, d time.Duration) (woken bool) {
	var timer <-chan time.Time
	if d != idle {
		timer = u.cfg.After(d)
	}
	select {
	case <-ctx.Done():
		return false
	case <-u.wake:
		return true
	case <-timer:
		return false
	}
}

// step does one unit of work and returns how long to sleep before the
// next: 0 to go on at once, idle to wait for Wake.
func (u *Uploader) step(ctx context.Context, forced *bool) time.Duration {
	rec, ok, err := u.store.Head()
	if err != nil {
		return u.storeFailed("read head", err)
	}
	if u.unacked != nil {
		if ok && rec.ID == u.unacked.id {
			if err := u.store.MarkDelivered(rec.ID, u.unacked.at); err != nil {
				return u.storeFailed("mark delivered", err)
			}
			u.unacked = nil
			u.storeRecovered()
			return 0
		}
		u.unacked = nil // a technician moved it meanwhile
	}
	u.storeRecovered()
	if !ok {
		*forced = false
		u.update(func(st *Status) { st.HeadID, st.NextAttempt, st.WaitingForClock = 0, time.Time{}, false })
		return idle
	}
	if rec.Event.EventTime == "" {
		t, ok := u.stamp(rec)
		if !ok {
			return u.cfg.ClockRetry
		}
		if err := u.store.SetEventTime(rec.ID, t); err != nil {
			return u.storeFailed("set event time", err)
		}
		rec.Event.EventTime = t
	} else if u.health.clockWait {
		u.clockWait(rec, false) // stamped elsewhere, or a technician moved it
	}
	now := u.cfg.Now()
	if due := u.dueAt(rec, *forced, now); due.After(now) {
		u.update(func(st *Status) { st.HeadID, st.NextAttempt = rec.ID, due })
		return due.Sub(now)
	}
	*forced = false
	u.update(func(st *Status) { st.HeadID, st.NextAttempt = rec.ID, now })
	return u.attempt(ctx, rec)
}

// dueAt is when rec may be tried: its NextAttempt, or sooner after a Wake
// unless the server asked for the wait, but never sooner than BackoffMin
// after the previous attempt, nor before the pace allows. A wait further
// away than any the loop schedules was computed before the wall clock
// stepped back (a clock that ran ahead, then was corrected): it is over.
func (u *Uploader) dueAt(rec outbox.Record, forced bool, now time.Time) time.Time {
	due := rec.NextAttempt
	if due.Sub(now) > u.sched.longest() {
		due = now
	}
	if u.notBefore.Sub(now) > u.sched.longest() {
		u.notBefore = time.Time{}
	}
	return maxTime(u.forcedDue(rec, due, forced), u.notBefore)
}

// forcedDue is due, or sooner after a Wake (see dueAt).
func (u *Uploader) forcedDue(rec outbox.Record, due time.Time, forced bool) time.Time {
	if !forced || (rec.LastError != nil && wechatpay.RetryLater(rec.LastError.Status)) {
		return due
	}
	if earliest := u.lastAttempt.Add(u.cfg.BackoffMin); earliest.Before(due) {
		return earliest
	}
	return due
}

// stamp asks Config.Stamp for a held event's time.
func (u *Uploader) stamp(rec outbox.Record) (string, bool) {
	t, ok := "", false
	if u.cfg.Stamp != nil {
		t, ok = u.cfg.Stamp(rec)
	}
	u.clockWait(rec, !ok)
	return t, ok
}

// attempt sends rec once and records the outcome durably.
func (u *Uploader) attempt(ctx context.Context, rec outbox.Record) time.Duration {
	u.lastAttempt = u.cfg.Now()
	derr := u.deliver(ctx, rec.Event)
	at := u.cfg.Now()
	if derr == nil {
		u.streak = rejectStreak{}
		u.notBefore = at.Add(u.pace.spacing(at, u.rand()))
		u.delivered(rec, at)
		if err := u.store.MarkDelivered(rec.ID, at); err != nil {
			u.unacked = &unacked{id: rec.ID, at: at}
			return u.storeFailed("mark delivered", err)
		}
		return 0
	}
	// Status and logs describe the attempt; they are updated before the
	// outbox so that they never lag what the outbox shows.
	if derr.Rejected() {
		if n := u.streak.note(rec.ID, derr); n >= u.cfg.SystemicStreak {
			derr.Kind, derr.Streak = KindHeld, n
		}
	} else if derr.Kind != KindAbandoned && derr.Kind != KindNetwork {
		u.streak = rejectStreak{}
	}
	ae := derr.attemptError(at)
	if derr.Rejected() {
		u.deadLettered(rec, derr, ae)
		if err := u.store.DeadLetter(rec.ID, ae, derr.deadReason()); err != nil {
			return u.storeFailed("dead-letter", err)
		}
		return 0
	}
	var throttle time.Duration
	if derr.Kind == KindThrottled && !u.cfg.SpreadRetryAfter {
		throttle = u.pace.throttled(at)
	}
	next := u.sched.next(rec, derr, at, u.rand(), throttle)
	u.failed(rec, derr, ae, next)
	if err := u.store.RecordFailure(rec.ID, ae, next); err != nil {
		return max(u.storeFailed("record failure", err), next.Sub(at))
	}
	return 0
}

// deliver runs one attempt. Cancelling ctx leaves it ShutdownGrace to
// finish before it is cut off with ErrAbandoned.
func (u *Uploader) deliver(ctx context.Context, ev punch.Event) *DeliveryError {
	actx, cancel := context.WithCancelCause(context.WithValue(context.WithoutCancel(ctx), runKey{}, ctx))
	defer cancel(nil)
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(u.cfg.ShutdownGrace, func() { cancel(ErrAbandoned) })
		context.AfterFunc(actx, func() { t.Stop() })
	})
	defer stop()
	return u.client.send(actx, ev)
}

// runKey carries Run's context into an attempt, so that the transport
// starts no new quick retry once shutdown has begun.
type runKey struct{}

// stopping reports whether Run's context, carried by an attempt's ctx, is
// done.
func stopping(ctx context.Context) bool {
	run, ok := ctx.Value(runKey{}).(context.Context)
	return ok && run.Err() != nil
}

func maxTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return b
	}
	return a
}

// rand returns a uniform float in [0, 1) for jitter.
func (u *Uploader) rand() float64 {
	if u.cfg.Rand == nil {
		return rand.Float64()
	}
	u.randMu.Lock()
	defer u.randMu.Unlock()
	return u.cfg.Rand.Float64()
}
