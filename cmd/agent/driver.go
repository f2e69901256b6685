package main

import (
	"context"
	"fmt"
	"io"

	"taxi-agent/internal/cli"
	"taxi-agent/internal/config"
)

// cmdDriver dispatches `agent driver <sub>`: the driver the terminal's
// card reader reports, for meters that ask the terminal who is driving
// (meter.identity = "terminal"). The driver is kept in the outbox file,
// through the daemon's socket or, with the daemon stopped, the file.
func cmdDriver(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	subs := []command{
		{Name: "set", Summary: "set the driver the meter is told about", Run: cmdDriverSet},
		{Name: "clear", Summary: "forget the driver: the meter's requests are refused", Run: cmdDriverClear},
		{Name: "show", Summary: "show the driver set", Run: cmdDriverShow},
	}
	return cli.Dispatch(ctx, "agent driver", "-config FILE [flags]", subs, args, stdout, stderr)
}

// noteIdentity tells the technician when the config does not use the
// driver set here.
func noteIdentity(cfg config.Config, stderr io.Writer) {
	if cfg.Meter.Identity != config.IdentityTerminal {
		fmt.Fprintf(stderr, "note: meter.identity is %q: the meter reads the driver's card itself and this driver is not used "+
			"(set meter.identity = %q for meters that ask the terminal)\n", cfg.Meter.Identity, config.IdentityTerminal)
	}
}
