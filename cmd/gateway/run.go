package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"

	"taxi-agent/internal/cli"
	"taxi-agent/internal/gateway"
	"taxi-agent/internal/gateway/metrics"
	"taxi-agent/internal/gateway/redislimit"
	"taxi-agent/internal/version"
)

func cmdRun(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlagSet("run", "-config FILE", stderr)
	path := fs.String("config", defaultConfigPath, "config file")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	cfg, err := gateway.Load(*path)
	if err != nil {
		return err
	}
	logger := newLogger(cfg.Log, stderr)
	info := version.Get()
	var opts gateway.Options
	if cfg.Limit.RedisURL != "" {
		shared, err := redislimit.New(cfg.Limit.RedisURL, cfg.Limit.Rate, cfg.Limit.Jitter.Duration)
		if err != nil {
			return err
		}
		opts.Shared = shared
	}
	var g *gateway.Gateway
	prom := metrics.New(func() int { return g.QueueDepth() })
	opts.Observer, opts.Metrics = prom, prom.Handler()
	g, err = gateway.New(cfg, logger, fmt.Sprintf("taxi-gateway/%s (%s/%s)", info.Version, info.GOOS, info.GOARCH), opts)
	if err != nil {
		if opts.Shared != nil {
			_ = opts.Shared.Close()
		}
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen.Addr)
	if err != nil {
		return fmt.Errorf("listen on listen.addr: %w", err)
	}
	var mln net.Listener
	metrics := "none"
	if cfg.Listen.MetricsAddr != "" {
		if mln, err = net.Listen("tcp", cfg.Listen.MetricsAddr); err != nil {
			ln.Close()
			return fmt.Errorf("listen on listen.metrics_addr: %w", err)
		}
		metrics = mln.Addr().String()
	}
	// The addresses actually bound (port 0 picks one) for whoever started
	// us: systemd's status line, and tests.
	sddaemon.SdNotify(false, fmt.Sprintf("STATUS=listening on %s, metrics on %s\nREADY=1", ln.Addr(), metrics))
	stopWatchdog := watchdog(ctx)
	defer stopWatchdog()
	err = g.Serve(ctx, ln, mln)
	sddaemon.SdNotify(false, "STOPPING=1")
	return err
}

// watchdog pings systemd's watchdog while the gateway runs, when enabled.
func watchdog(ctx context.Context) func() {
	d, err := sddaemon.SdWatchdogEnabled(false)
	if err != nil || d == 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		t := time.NewTicker(d / 2)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				sddaemon.SdNotify(false, "WATCHDOG=1")
			}
		}
	}()
	return cancel
}

// newLogger builds the daemon's slog logger; journald takes stderr.
func newLogger(c gateway.Log, w io.Writer) *slog.Logger { return cli.NewLogger(c.Level, c.Format, w) }
