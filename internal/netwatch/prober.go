package netwatch

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"taxi-agent/internal/backoff"
)

// Prober defaults and bounds.
const (
	DefaultProbeTimeout  = 5 * time.Second  // SYN, and up to two retransmissions
	DefaultProbeInterval = 60 * time.Second // while the caller's backoff is long
	MinProbeInterval     = 10 * time.Second // the cap: never probe more often
)

// ProbeResult is the outcome of one reachability probe.
type ProbeResult struct {
	At   time.Time     `json:"at"`
	Addr string        `json:"addr"`
	OK   bool          `json:"ok"`
	RTT  time.Duration `json:"rtt"`             // connect time, name resolution included
	Err  string        `json:"error,omitempty"` // why it failed
}

// ProberOptions configures a Prober.
type ProberOptions struct {
	// Logger receives the prober's logs; nil discards them.
	Logger *slog.Logger
	// Timeout bounds one probe; zero means DefaultProbeTimeout.
	Timeout time.Duration
	// Interval is the wait between probes in Run, plus up to a quarter of
	// it at random to spread a fleet. Zero means DefaultProbeInterval; it
	// is raised to MinProbeInterval.
	Interval time.Duration
	// OnReachable is called by Run, from its goroutine, when a probe
	// succeeds after one or more failed ones. It must not block.
	OnReachable func(ProbeResult)
	// Rand draws the interval's spread; nil uses math/rand/v2's global source.
	Rand *rand.Rand
	// Now stamps results (ProbeResult.At); nil uses time.Now. RTT is
	// always measured on the monotonic clock.
	Now func() time.Time
}

// Prober checks that a TCP endpoint answers: a connect, then an abortive
// close (RST), so nothing but the handshake crosses the wire and no
// TIME_WAIT is left behind.
type Prober struct {
	opts   ProberOptions
	log    *slog.Logger
	dialer net.Dialer

	mu      sync.Mutex
	last    ProbeResult
	hasLast bool
}

// NewProber returns a Prober.
func NewProber(opts ProberOptions) *Prober {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultProbeTimeout
	}
	if opts.Interval == 0 {
		opts.Interval = DefaultProbeInterval
	}
	opts.Interval = max(opts.Interval, MinProbeInterval)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Prober{
		opts:   opts,
		log:    log.With("component", "netwatch.prober"),
		dialer: net.Dialer{Timeout: opts.Timeout},
	}
}

// Probe connects to addr (host:port) and closes the connection at once.
// It reports whether the connect succeeded and how long it took, and
// records the result for Last.
func (p *Prober) Probe(ctx context.Context, addr string) (ok bool, rtt time.Duration, err error) {
	r, err := p.probe(ctx, addr)
	return r.OK, r.RTT, err
}

func (p *Prober) probe(ctx context.Context, addr string) (ProbeResult, error) {
	at, start := p.opts.Now(), time.Now()
	c, err := p.dialer.DialContext(ctx, "tcp", addr)
	r := ProbeResult{At: at, Addr: addr, OK: err == nil, RTT: time.Since(start)}
	if err != nil {
		err = fmt.Errorf("probe %s: %w", addr, err)
		r.Err = err.Error()
	} else {
		if tc, isTCP := c.(*net.TCPConn); isTCP {
			_ = tc.SetLinger(0) // close with RST: no FIN exchange, no TIME_WAIT
		}
		c.Close()
	}
	p.mu.Lock()
	p.last, p.hasLast = r, true
	p.mu.Unlock()
	return r, err
}

// Last returns the last probe's result, for `agent status`.
func (p *Prober) Last() (ProbeResult, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last, p.hasLast
}

// Run probes addr every Interval (plus spread) while active returns true,
// and calls OnReachable when a probe succeeds after failures. The caller
// makes active true only while its backoff is long because of network
// errors (e.g. above 30 s); a server answering 429 or 5xx is reachable,
// and probing it would only add traffic. Run returns nil when ctx is done,
// or an error at once if addr is not host:port.
func (p *Prober) Run(ctx context.Context, addr string, active func() bool) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("probe address %q: %w", addr, err)
	}
	failures := 0
	timer := time.NewTimer(p.wait())
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		timer.Reset(p.wait())
		if !active() {
			failures = 0 // a new long backoff starts afresh
			continue
		}
		r, err := p.probe(ctx, addr)
		switch {
		case ctx.Err() != nil:
			return nil
		case !r.OK:
			if failures == 0 {
				p.log.Info("endpoint unreachable", "addr", addr, "error", err)
			}
			failures++
		case failures > 0:
			p.log.Info("endpoint reachable again", "addr", addr, "rtt", r.RTT, "failed_probes", failures)
			failures = 0
			if p.opts.OnReachable != nil {
				p.opts.OnReachable(r)
			}
		}
	}
}

// wait draws the time to the next probe: Interval plus up to a quarter,
// the spread drawn as a one-step full-jitter wait of package backoff.
func (p *Prober) wait() time.Duration {
	r := rand.Float64
	if p.opts.Rand != nil {
		r = p.opts.Rand.Float64
	}
	spread := p.opts.Interval / 4
	return p.opts.Interval + backoff.Policy{Min: spread, Max: spread}.Delay(1, r())
}
