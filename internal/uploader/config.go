package uploader

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"runtime"
	"time"

	"taxi-agent/internal/outbox"
)

// Defaults for zero Config fields.
const (
	DefaultBackoffMin     = time.Second
	DefaultBackoffMax     = 5 * time.Minute
	DefaultRetryAfterCap  = 5 * time.Minute
	DefaultAttemptTimeout = 15 * time.Second
	DefaultShutdownGrace  = 10 * time.Second
	DefaultClockRetry     = 30 * time.Second

	// DefaultHeldRetry is the retry interval while WeChat Pay answers 401,
	// 403 or 404. Such a condition is fixed by a person (config, key) or by
	// time sync (clock), not by hammering: five minutes bounds the delay
	// after the fix to a few minutes (and the agent can Wake the loop on a
	// clock step or a config reload), while twelve requests an hour per
	// terminal are no load for the API and cannot get a fleet rate-limited.
	DefaultHeldRetry = 5 * time.Minute

	// DefaultTransportRetries is how many quick retries one attempt may make
	// inside go-retryablehttp, mainly for a keep-alive connection the
	// server closed while idle (net/http does not retry a POST by itself).
	DefaultTransportRetries = 2
	DefaultTransportWaitMin = 250 * time.Millisecond
	DefaultTransportWaitMax = 2 * time.Second

	// DefaultSystemicStreak is how many different events in a row may get
	// the same 4xx refusal before it is taken as systemic (the terminal's
	// setup, not the events) and the queue is held instead of
	// dead-lettering the backlog: at most this many minus one are
	// dead-lettered by one mistake.
	DefaultSystemicStreak = 3
)

// Config tunes an Uploader. Zero fields take the defaults above.
//
// Durations that bound network I/O (AttemptTimeout, ShutdownGrace, the
// transport waits) run on the real clock; the drain loop's schedule
// (NextAttempt, backoff, HeldRetry) runs on Now and After, which tests
// replace.
type Config struct {
	// BaseURL is wechatpay.base_url, e.g. https://api.mch.weixin.qq.com.
	BaseURL string
	// CAFile holds extra trusted roots (PEM) on top of the system's.
	CAFile string
	// UserAgent is sent with every request.
	UserAgent string

	// BackoffMin and BackoffMax bound the drain loop's exponential backoff.
	BackoffMin, BackoffMax time.Duration
	// HeldRetry is the slow retry interval for 401/403/404.
	HeldRetry time.Duration
	// RetryAfterCap caps a server's Retry-After.
	RetryAfterCap time.Duration
	// AttemptTimeout bounds one HTTP exchange (connect, TLS, send, answer).
	AttemptTimeout time.Duration
	// ShutdownGrace is how long an in-flight attempt may still finish after
	// Run's context is cancelled before it is abandoned.
	ShutdownGrace time.Duration
	// ClockRetry is how often a head held for an untrusted clock is offered
	// to Stamp again (Wake also does).
	ClockRetry time.Duration

	// TransportRetries is the number of quick retries inside one attempt;
	// negative means none.
	TransportRetries int
	// TransportWaitMin and TransportWaitMax bound the waits between them. A
	// Retry-After longer than TransportWaitMax ends the attempt and is left
	// to the drain loop.
	TransportWaitMin, TransportWaitMax time.Duration

	// SpreadRetryAfter says that the endpoint spreads the Retry-After of
	// its 429s itself, one slot apart for the whole fleet (taxi-gateway
	// does): a 429 is then retried exactly at its Retry-After (capped),
	// without the throttling pace (pace.go), which exists for an endpoint
	// that tells every client the same wait.
	SpreadRetryAfter bool

	// MaxIdleConns is how many kept-alive connections to the endpoint the
	// client keeps; 0 means 2, enough for one terminal's strictly
	// sequential drain. A relay with many calls in flight needs more.
	MaxIdleConns int

	// WrapConn, when set, wraps each TCP connection to the endpoint,
	// beneath TLS: taxi-gateway takes its rate token there, as a request
	// is written to the wire.
	WrapConn func(net.Conn) net.Conn

	// SystemicStreak is the number of different events in a row refused
	// with the same status and code that holds the queue; 0 means
	// DefaultSystemicStreak.
	SystemicStreak int

	// Stamp resolves a held event (Event.EventTime == "") once the wall
	// clock is trusted: it returns the event time, or ok=false to wait.
	// Nil means held events wait until something else stamps them.
	Stamp func(r outbox.Record) (eventTime string, ok bool)

	// Now is the drain loop's clock; nil means time.Now.
	Now func() time.Time
	// After is the drain loop's timer; nil means time.After.
	After func(d time.Duration) <-chan time.Time
	// Rand is the jitter source; nil means math/rand/v2's global source,
	// which the runtime seeds from the OS so that terminals differ.
	Rand *rand.Rand
	// Logger receives the uploader's logs; nil means slog.Default().
	Logger *slog.Logger
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.BackoffMin, DefaultBackoffMin)
	def(&c.BackoffMax, DefaultBackoffMax)
	def(&c.HeldRetry, DefaultHeldRetry)
	def(&c.RetryAfterCap, DefaultRetryAfterCap)
	def(&c.AttemptTimeout, DefaultAttemptTimeout)
	def(&c.ShutdownGrace, DefaultShutdownGrace)
	def(&c.ClockRetry, DefaultClockRetry)
	def(&c.TransportWaitMin, DefaultTransportWaitMin)
	def(&c.TransportWaitMax, DefaultTransportWaitMax)
	switch {
	case c.TransportRetries == 0:
		c.TransportRetries = DefaultTransportRetries
	case c.TransportRetries < 0:
		c.TransportRetries = 0
	}
	if c.MaxIdleConns <= 0 {
		c.MaxIdleConns = 2
	}
	if c.SystemicStreak <= 0 {
		c.SystemicStreak = DefaultSystemicStreak
	}
	if c.UserAgent == "" {
		c.UserAgent = fmt.Sprintf("taxi-agent (%s/%s) %s", runtime.GOOS, runtime.GOARCH, runtime.Version())
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.After == nil {
		c.After = time.After
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// validate checks a defaulted config, naming the field at fault.
func (c Config) validate() error {
	u, err := url.Parse(c.BaseURL)
	switch {
	case err != nil || u.Host == "":
		return fmt.Errorf("%w: BaseURL %q is not a URL", ErrConfig, c.BaseURL)
	case u.Scheme != "https":
		return fmt.Errorf("%w: BaseURL must be https (TLS is always verified), not %q", ErrConfig, u.Scheme)
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("%w: BaseURL %q has a query or fragment", ErrConfig, c.BaseURL)
	}
	for name, d := range map[string]time.Duration{
		"BackoffMin": c.BackoffMin, "BackoffMax": c.BackoffMax, "HeldRetry": c.HeldRetry,
		"RetryAfterCap": c.RetryAfterCap, "AttemptTimeout": c.AttemptTimeout,
		"ShutdownGrace": c.ShutdownGrace, "ClockRetry": c.ClockRetry,
		"TransportWaitMin": c.TransportWaitMin, "TransportWaitMax": c.TransportWaitMax,
	} {
		if d < 0 {
			return fmt.Errorf("%w: %s is negative (%s)", ErrConfig, name, d)
		}
	}
	if c.BackoffMin > c.BackoffMax {
		return fmt.Errorf("%w: BackoffMin %s is above BackoffMax %s", ErrConfig, c.BackoffMin, c.BackoffMax)
	}
	if c.TransportWaitMin > c.TransportWaitMax {
		return fmt.Errorf("%w: TransportWaitMin %s is above TransportWaitMax %s", ErrConfig, c.TransportWaitMin, c.TransportWaitMax)
	}
	return nil
}
