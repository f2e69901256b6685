package main

import (
	"context"
	"fmt"
	"io"

	"taxi-agent/internal/config"
)

func cmdCheckConfig(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check-config", "-config FILE", stderr)
	path := fs.String("config", defaultConfigPath, "config file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	mode := "public key " + cfg.WeChatPay.PublicKeyID
	if cfg.WeChatPay.PlatformCertFile != "" {
		mode = "platform certificate " + cfg.WeChatPay.PlatformCertFile
	}
	if cfg.Gateway.Enabled() {
		_, err = fmt.Fprintf(stdout, "%s: ok (plate %s, region %d, meter %s at %d baud, outbox %s, gateway mode: %s with certificate %s, gateway trusted through %s)\n",
			*path, cfg.Vehicle.PlateNumber, cfg.Vehicle.RegionID, cfg.Meter.Device, cfg.Meter.Baud, cfg.Outbox.Path,
			cfg.Gateway.URL, cfg.Gateway.CertFile, cfg.Gateway.CAFile)
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s: ok (plate %s, region %d, meter %s at %d baud, outbox %s, answers verified with %s)\n",
		*path, cfg.Vehicle.PlateNumber, cfg.Vehicle.RegionID, cfg.Meter.Device, cfg.Meter.Baud, cfg.Outbox.Path, mode)
	return err
}
