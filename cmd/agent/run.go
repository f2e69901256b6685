package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"

	"taxi-agent/internal/cli"
	"taxi-agent/internal/config"
	"taxi-agent/internal/daemon"
)

func cmdRun(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlagSet("run", "-config FILE", stderr)
	path := fs.String("config", defaultConfigPath, "config file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	logger := newLogger(cfg.Log, stderr)
	for _, w := range cfg.Warnings() {
		logger.Warn("config", "key", w.Key, "problem", w.Msg)
	}
	watchdog, _ := sddaemon.SdWatchdogEnabled(false)
	return daemon.Run(ctx, daemon.Options{
		Config:           cfg,
		Logger:           logger,
		Notify:           func(state string) { sddaemon.SdNotify(false, state) },
		WatchdogInterval: watchdog / 2,
		RuntimeDir:       runtimeDir(),
	})
}

// runtimeDir is the first directory systemd made for RuntimeDirectory=
// ($RUNTIME_DIRECTORY, a colon-separated list), or "" outside systemd.
func runtimeDir() string {
	dir, _, _ := strings.Cut(os.Getenv("RUNTIME_DIRECTORY"), ":")
	return dir
}

// newLogger builds the daemon's slog logger; journald takes stderr.
func newLogger(c config.Log, w io.Writer) *slog.Logger { return cli.NewLogger(c.Level, c.Format, w) }
