package meter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"taxi-agent/internal/backoff"
)

// Link defaults.
const (
	DefaultBackoffMin   = 500 * time.Millisecond
	DefaultBackoffMax   = 30 * time.Second
	DefaultFrameTimeout = 500 * time.Millisecond
)

// LinkConfig configures a Link.
type LinkConfig struct {
	// Open opens the port: a closure over OpenSerial, or a pseudo-terminal
	// in tests. It is called again, with capped backoff, whenever the port
	// fails.
	Open func() (io.ReadWriteCloser, error)
	// Handle receives each sign-in (操作结果 0x90 only) and sign-out and
	// returns nil once the event is durable. A sign-out is then answered
	// 0x90, or 0xFF if Handle failed (the meter re-sends it later as
	// 0x00F1). A sign-in is not re-sent by the meter: Handle must keep one
	// it could not store and store it later; its error only decides the
	// answer in a dialect that answers sign-ins. A re-sent frame is handed
	// over again: de-duplication is the handler's business
	// (Event.Identity). A nil Handle is monitor mode: sign-ins, sign-outs
	// and requests are never answered (nothing is stored, so the meter
	// must not believe anything was); heartbeats still are.
	Handle func(ctx context.Context, ev Event) error
	// Identity, if set, says who is driving when the meter asks (0x00E0,
	// 0x00E3): the answer carries that identity, or refuses (0xFF) when ok
	// is false. Nil means the meter reads the driver's card itself: the
	// identity fields are zero-filled and the answer is 0x90.
	Identity func() (id Identity, ok bool)
	// Dialect is how this meter differs from the standard.
	Dialect Dialect
	// Device and Vendor are the bytes of the frames the agent sends
	// (default 0x00, 0x00).
	Device, Vendor byte
	// EchoWindow is how long after sending a frame the same bytes coming
	// back are dropped as its echo (default DefaultEchoWindow).
	EchoWindow time.Duration
	// UnreadableWindow is how long an answered unreadable frame is
	// remembered so that the same bytes are not answered again, and how
	// often a burst of unreadable frames is logged (default
	// DefaultUnreadableWindow).
	UnreadableWindow time.Duration
	// Observe, if set, sees every frame in and out and every run of
	// dropped bytes, synchronously: keep it quick.
	Observe func(FrameEvent)
	// Logger receives the link's logs; nil means slog.Default().
	Logger *slog.Logger

	// BackoffMin and BackoffMax bound the wait between attempts to reopen
	// the port (defaults DefaultBackoffMin, DefaultBackoffMax).
	BackoffMin, BackoffMax time.Duration
	// FrameTimeout is how long a partial frame may wait for its next byte
	// before it is abandoned and the decoder resynchronises (default
	// DefaultFrameTimeout; at 9600 baud a byte takes about 1 ms).
	FrameTimeout time.Duration
	// StatusInterval, if set, sends a status query (0x0000) that often.
	StatusInterval time.Duration
	// Now is the link's clock (default time.Now): receipt times, stats and
	// the time sent in answers.
	Now func() time.Time
	// Rand returns a uniform float in [0, 1) for the backoff's jitter;
	// nil means math/rand/v2.
	Rand func() float64
}

// Link runs the meter protocol over a port and reopens the port when it
// fails. Create it with NewLink; Stats is safe for concurrent use.
type Link struct {
	cfg LinkConfig
	log *slog.Logger

	mu    sync.Mutex
	stats LinkStats
	hb    HeartbeatStatus
	hasHB bool
	ms    MeterStatus
	hasMS bool

	// Owned by the goroutine in Run.
	down      bool // the port failed and no valid frame has come since
	downSince time.Time
	// storeFailing is set per kind of event (storeSignIn, storeSignOut)
	// from a failed Handle until the next event is stored. The first
	// failure of each kind in a streak is logged: the meter is told
	// different things (a sign-in is kept, a sign-out answered 0xFF), and
	// a streak that began with a sign-in must still say that sign-outs
	// are being refused.
	storeFailing [2]bool
	gotFrame     bool   // a valid frame came on the current port
	body, out    []byte // reused buffers of the answer being sent
	sent         sentFrames
	answered     answeredOnce
	badBurst     burst // unreadable reports
	flagBurst    burst // requests that do not ask for an answer
	refuseBurst  burst // requests refused for want of a driver
}

// NewLink returns a link; call Run to start it.
func NewLink(cfg LinkConfig) *Link {
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = DefaultBackoffMin
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = DefaultBackoffMax
	}
	if cfg.FrameTimeout <= 0 {
		cfg.FrameTimeout = DefaultFrameTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.EchoWindow <= 0 {
		cfg.EchoWindow = DefaultEchoWindow
	}
	if cfg.UnreadableWindow <= 0 {
		cfg.UnreadableWindow = DefaultUnreadableWindow
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default().With("component", "meter")
	}
	w := cfg.UnreadableWindow
	return &Link{cfg: cfg, log: log, body: make([]byte, 0, 64), out: make([]byte, 0, 128),
		sent: sentFrames{window: cfg.EchoWindow}, answered: answeredOnce{window: w},
		badBurst: burst{window: w}, flagBurst: burst{window: w}, refuseBurst: burst{window: w}}
}

// Stats returns a snapshot of the link's counters and state.
func (l *Link) Stats() LinkStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.stats
	if l.hasHB {
		hb := l.hb
		s.Heartbeat = &hb
	}
	if l.hasMS {
		ms := l.ms
		s.MeterStatus = &ms
	}
	return s
}

func (l *Link) update(f func(s *LinkStats)) {
	l.mu.Lock()
	f(&l.stats)
	l.mu.Unlock()
}

// Run opens the port and serves the meter until ctx is cancelled, then
// closes the port and returns nil. A port that cannot be opened or fails
// (read or write error, hangup) is closed and reopened after a capped,
// jittered backoff; the failure is logged once and the recovery once.
func (l *Link) Run(ctx context.Context) error {
	if l.cfg.Open == nil {
		return errors.New("run meter link: no Open function")
	}
	// Equal jitter: half of each wait is fixed, so that a port that keeps
	// failing at once (a USB adapter not plugged in) is never reopened in
	// a tight loop, and half is random, so that a fleet does not retry in
	// step.
	bo := &backoff.Backoff{Policy: backoff.Policy{Min: l.cfg.BackoffMin, Max: l.cfg.BackoffMax, Floor: 0.5}, Rand: l.cfg.Rand}
	for ctx.Err() == nil {
		port, err := l.cfg.Open()
		if err != nil {
			l.portFailed(fmt.Errorf("open meter port: %w", err))
		} else {
			l.opened()
			err = l.serve(ctx, port)
			l.update(func(s *LinkStats) { s.Connected, s.ConnectedSince = false, time.Time{} })
			if ctx.Err() != nil {
				break
			}
			l.portFailed(err)
			if l.gotFrame {
				bo.Reset() // the port worked: the first retry is quick
			}
		}
		if !bo.Wait(ctx) {
			break
		}
	}
	l.log.Info("meter link stopped")
	return nil
}

func (l *Link) opened() {
	now := l.cfg.Now()
	l.gotFrame = false
	var opens uint64
	l.update(func(s *LinkStats) {
		s.Opens++
		if s.Opens > 1 {
			s.Reopens++
		}
		s.Connected, s.ConnectedSince = true, now
		opens = s.Opens
	})
	if opens == 1 {
		l.log.Info("meter port open")
	} else {
		l.log.Debug("meter port reopened", "opens", opens)
	}
}

func (l *Link) portFailed(err error) {
	now := l.cfg.Now()
	l.update(func(s *LinkStats) {
		s.PortErrors++
		s.LastPortError, s.LastPortErrorAt = err.Error(), now
	})
	if l.down {
		l.log.Debug("meter port still failing", "err", err)
		return
	}
	l.down, l.downSince = true, now
	l.log.Warn("meter port failed; reopening with backoff until it works", "err", err)
}

// Read buffers of the port reader: a few, reused, so reading allocates
// nothing in the steady state.
const (
	readBuffers = 4
	readSize    = 512
	// zeroReadPause is how long the reader pauses after a Read that
	// returned no bytes and no error, so that such a port cannot spin.
	zeroReadPause = 20 * time.Millisecond
)

// serve runs the protocol on one open port until it fails (the error is
// returned) or ctx ends (nil). The port is closed when serve returns.
func (l *Link) serve(ctx context.Context, port io.ReadWriteCloser) error {
	var (
		wg        sync.WaitGroup
		stop      = make(chan struct{})
		closeOnce sync.Once
		chunks    = make(chan []byte)
		free      = make(chan []byte, readBuffers)
		readErr   = make(chan error, 1)
	)
	closePort := func() { closeOnce.Do(func() { port.Close() }) }
	defer func() {
		close(stop)
		closePort()
		wg.Wait()
	}()
	for range readBuffers {
		free <- make([]byte, readSize)
	}
	// Closing the port is what unblocks a Read in flight.
	wg.Go(func() {
		select {
		case <-ctx.Done():
			closePort()
		case <-stop:
		}
	})
	wg.Go(func() { readPort(port, free, chunks, readErr, stop) })

	var dec Decoder
	partial := time.NewTimer(time.Hour)
	partial.Stop()
	defer partial.Stop()
	var statusTick <-chan time.Time
	if l.cfg.StatusInterval > 0 {
		t := time.NewTicker(l.cfg.StatusInterval)
		defer t.Stop()
		statusTick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-readErr:
			if ctx.Err() != nil {
				return nil
			}
			return err
		case b := <-chunks:
			now := l.cfg.Now()
			l.update(func(s *LinkStats) { s.BytesIn += uint64(len(b)) })
			dec.Write(b)
			free <- b
			if err := l.decode(ctx, port, &dec, now); err != nil {
				return err
			}
		case <-partial.C:
			now := l.cfg.Now()
			if err := dec.Abandon(); err != nil {
				l.dropped(now, err, dec.Last())
			}
			if err := l.decode(ctx, port, &dec, now); err != nil {
				return err
			}
		case <-statusTick:
			q := StatusQuery{Time: l.cfg.Now()}
			if err := l.send(port, CmdStatus, q.Append(l.body[:0]), func(s *LinkStats) { s.Answers.StatusQueries++ }); err != nil {
				return err
			}
		}
		if dec.Buffered() > 0 {
			partial.Reset(l.cfg.FrameTimeout)
		} else {
			partial.Stop()
		}
	}
}

// readPort reads the port into free buffers and hands them over on
// chunks, until a read fails or stop is closed.
func readPort(port io.Reader, free chan []byte, chunks chan<- []byte, readErr chan<- error, stop <-chan struct{}) {
	for {
		var b []byte
		select {
		case b = <-free:
		case <-stop:
			return
		}
		n, err := port.Read(b[:cap(b)])
		if n > 0 {
			select {
			case chunks <- b[:n]:
			case <-stop:
				return
			}
		} else {
			free <- b
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("read meter port: %w", ErrPortHangup)
			}
			readErr <- err
			return
		}
		if n == 0 {
			select {
			case <-time.After(zeroReadPause):
			case <-stop:
				return
			}
		}
	}
}

// dropped records bytes the decoder dropped.
func (l *Link) dropped(now time.Time, why error, raw []byte) {
	l.update(func(s *LinkStats) {
		s.BytesDropped += uint64(len(raw))
		switch why {
		case ErrBadCheck:
			s.BadChecks++
		case ErrBadLength:
			s.BadLengths++
		case ErrMissingEnd:
			s.MissingEnds++
		case ErrTruncated:
			s.Truncated++
		}
		if why != ErrNoise {
			s.Resyncs++
		}
	})
	l.log.Debug("meter bytes dropped", "why", why, "bytes", len(raw))
	l.observe(FrameEvent{Time: now, Dir: DirIn, Raw: raw, Err: why})
}

func (l *Link) observe(e FrameEvent) {
	if l.cfg.Observe != nil {
		l.cfg.Observe(e)
	}
}

// send writes one frame to the meter. The frame is counted and observed
// before it is written, so that whoever sees the answer on the line also
// sees it in the stats; a write that fails ends the session.
func (l *Link) send(port io.Writer, cmd uint16, data []byte, count func(s *LinkStats)) error {
	f := Frame{Device: l.cfg.Device, Vendor: l.cfg.Vendor, Command: cmd, Data: data}
	l.out = AppendFrame(l.out[:0], f)
	wire := l.out
	l.update(func(s *LinkStats) {
		s.BytesOut += uint64(len(wire))
		count(s)
	})
	f.Data = wire[8 : len(wire)-3]
	now := l.cfg.Now()
	l.observe(FrameEvent{Time: now, Dir: DirOut, Frame: f, Raw: wire})
	l.sent.add(now, wire)
	if _, err := port.Write(wire); err != nil {
		return fmt.Errorf("write %s to meter: %w", CommandName(cmd), err)
	}
	return nil
}
