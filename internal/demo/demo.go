// Package demo runs the whole agent on one machine with no hardware, keys
// or network: a simulated taximeter on a pseudo-terminal, throwaway keys and
// a signature-checking fake of WeChat Pay on loopback, around the real
// pipeline of package daemon. It tells what happens in plain words and
// checks the outcome.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"taxi-agent/internal/admin"
	"taxi-agent/internal/config"
	"taxi-agent/internal/daemon"
	"taxi-agent/internal/meter"
	"taxi-agent/internal/metersim"
	"taxi-agent/internal/outbox"
	"taxi-agent/internal/punchsim"
	"taxi-agent/internal/simrig"
)

// Options tune a demo run.
type Options struct {
	Out     io.Writer    // the story
	Logs    *slog.Logger // the daemon's own logs; nil discards them
	Dir     string       // work directory; "" makes a temporary one
	Offline time.Duration
	// Gateway runs the terminal in gateway mode: meter → agent → taxi-gateway
	// (with a throwaway fleet CA) → fake WeChat Pay.
	Gateway bool
}

// Summary is what the demo counted at the end.
type Summary struct {
	MeterEvents   int // sign-ins and sign-outs the meter reported
	MeterSends    int // frames the meter sent for them, re-sends included
	Stored        uint64
	Delivered     uint64
	DeadLettered  uint64
	Retries       uint64
	Unverified    uint64
	Accepted      int // punches the fake endpoint accepted
	OutOfOrder    int
	ForgedRefused bool
}

// Run plays the scenario and returns an error if the outcome is wrong.
func Run(ctx context.Context, o Options) (Summary, error) {
	if o.Offline == 0 {
		o.Offline = 6 * time.Second
	}
	if o.Logs == nil {
		o.Logs = slog.New(slog.DiscardHandler)
	}
	dir := o.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "taxi-agent-demo-")
		if err != nil {
			return Summary{}, fmt.Errorf("make demo directory: %w", err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	s := &scenario{out: o.Out, start: time.Now(), offlineFor: o.Offline}

	rig, err := simrig.New(dir, simrig.Options{
		OnExchange: s.exchange,
		Meter:      metersim.Options{AnswerTimeout: 500 * time.Millisecond},
	})
	if err != nil {
		return Summary{}, err
	}
	defer rig.Close()
	srv, pty, cfg := rig.Endpoint, rig.PTY, rig.Config
	s.say("setup", "throwaway merchant key, WeChat Pay public key and TLS CA written to %s", filepath.Join(dir, "keys"))
	s.say("setup", "fake WeChat Pay punch endpoint on %s (checks every signature with crypto/rsa)", srv.URL())
	s.say("setup", "simulated taximeter on %s (9600 8N1, JT/T 905.2 frames)", pty.Path)

	endpoint := cfg.WeChatPay.BaseURL
	if o.Gateway {
		gw, err := startGateway(dir, rig.Keys, srv.URL(), cfg.Vehicle.PlateNumber, o.Logs, s)
		if err != nil {
			return Summary{}, fmt.Errorf("start gateway: %w", err)
		}
		defer gw.stop()
		cfg.WeChatPay, cfg.Gateway = config.Default().WeChatPay, gw.section
		endpoint = gw.section.URL + " (taxi-gateway, mutual TLS)"
		s.gateway = true
		if err := cfg.Validate(); err != nil {
			return Summary{}, fmt.Errorf("demo config: %w", err)
		}
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	ready := make(chan *daemon.Daemon, 1)
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(runCtx, daemon.Options{
			Config: cfg,
			Logger: o.Logs,
			OpenPort: func() (io.ReadWriteCloser, error) {
				return meter.OpenSerial(meter.PortConfig{Device: pty.Path})
			},
			Ready: func(d *daemon.Daemon) { ready <- d },
		})
	}()
	var d *daemon.Daemon
	select {
	case d = <-ready:
	case err := <-done:
		return Summary{}, fmt.Errorf("agent did not start: %w", err)
	}
	s.say("agent", "started: outbox %s, delivering to %s", cfg.Outbox.Path, endpoint)

	sum, playErr := s.play(ctx, rig.Meter, srv, d)
	stop()
	runErr := <-done
	if runErr != nil {
		return sum, fmt.Errorf("agent stopped with an error: %w", runErr)
	}
	s.say("agent", "stopped cleanly (outbox closed)")
	if playErr != nil {
		return sum, playErr
	}
	return sum, s.check(sum)
}

// scenario prints the story and remembers what the fake endpoint saw.
type scenario struct {
	out        io.Writer
	start      time.Time
	offlineFor time.Duration
	gateway    bool // the agent sends through taxi-gateway
	mu         sync.Mutex
}

func (s *scenario) say(who, format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.out, "%5.1fs  %-8s %s\n", time.Since(s.start).Seconds(), who, fmt.Sprintf(format, args...))
}

func (s *scenario) exchange(x punchsim.Exchange) { s.say("wechat", "%s", simrig.Describe(x)) }

// wait polls cond until it holds or the deadline passes.
func wait(ctx context.Context, within time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

var errOutcome = errors.New("demo outcome is wrong")

func stats(ob admin.OutboxStore) outbox.Stats {
	st, _ := ob.Stats()
	return st
}
