package main

import (
	"context"
	"fmt"
	"io"

	"taxi-agent/internal/gateway"
)

func cmdCheckConfig(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check-config", "-config FILE", stderr)
	path := fs.String("config", defaultConfigPath, "config file")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	cfg, err := gateway.Load(*path)
	if err != nil {
		return err
	}
	limit := "in process"
	if cfg.Limit.RedisURL != "" {
		limit = "shared through Redis"
	}
	_, err = fmt.Fprintf(stdout, "%s: ok (listen %s, fleet CA %s, WeChat Pay %s as merchant %s, %g punches/s %s, max wait %s)\n",
		*path, cfg.Listen.Addr, cfg.Fleet.CADir, cfg.WeChatPay.BaseURL, cfg.WeChatPay.MchID,
		cfg.Limit.Rate, limit, cfg.Limit.MaxWait.Duration)
	return err
}
