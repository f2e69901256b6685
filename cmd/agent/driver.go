package main

import (
	"context"
	"fmt"
	"io"

	"taxi-agent/internal/config"
)

// cmdDriver dispatches `agent driver <sub>`: the driver the terminal's
// card reader reports, for meters that ask the terminal who is driving
// (meter.identity = "terminal"). The driver is kept in the outbox file,
// through the daemon's socket or, with the daemon stopped, the file.
func cmdDriver(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	subs := []command{
		{"set", "set the driver the meter is told about", cmdDriverSet},
		{"clear", "forget the driver: the meter's requests are refused", cmdDriverClear},
		{"show", "show the driver set", cmdDriverShow},
	}
	if len(args) > 0 {
		for _, c := range subs {
			if c.name == args[0] {
				return c.run(ctx, args[1:], stdout, stderr)
			}
		}
		if args[0] != "-h" && args[0] != "-help" && args[0] != "help" {
			fmt.Fprintf(stderr, "agent driver: unknown command %q\n", args[0])
		}
	}
	fmt.Fprintln(stderr, "usage: agent driver <command> -config FILE [flags]\n\ncommands:")
	for _, c := range subs {
		fmt.Fprintf(stderr, "  %-6s %s\n", c.name, c.summary)
	}
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "help") {
		return nil
	}
	return errUsage
}

// noteIdentity tells the technician when the config does not use the
// driver set here.
func noteIdentity(cfg config.Config, stderr io.Writer) {
	if cfg.Meter.Identity != config.IdentityTerminal {
		fmt.Fprintf(stderr, "note: meter.identity is %q: the meter reads the driver's card itself and this driver is not used "+
			"(set meter.identity = %q for meters that ask the terminal)\n", cfg.Meter.Identity, config.IdentityTerminal)
	}
}
