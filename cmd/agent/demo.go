package main

import (
	"context"
	"io"
	"log/slog"

	"taxi-agent/internal/demo"
)

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", "[-v] [-dir DIR] [-gateway]", stderr)
	viaGateway := fs.Bool("gateway", false, "send through taxi-gateway (throwaway fleet CA, mutual TLS), which holds the merchant key")
	verbose := fs.Bool("v", false, "also print the agent's own logs")
	dir := fs.String("dir", "", "keep keys and outbox in this directory (default: a temporary one, removed)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var logs *slog.Logger
	if *verbose {
		logs = slog.New(slog.NewTextHandler(stderr, nil))
	}
	_, err := demo.Run(ctx, demo.Options{Out: stdout, Logs: logs, Dir: *dir, Gateway: *viaGateway})
	return err
}
