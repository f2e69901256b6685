// Command agent is taxi-agent: it reads driver sign-in and sign-out from the
// taximeter, keeps them in a durable outbox and delivers them to WeChat Pay.
// It also hosts the field technician's CLI. See README.md.
package main

import (
	"context"
	"flag"
	"io"
	"os"
	"os/signal"
	"syscall"

	"taxi-agent/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// errUsage marks a command-line mistake; the usage has been printed.
var errUsage = cli.ErrUsage

type command = cli.Command

func commands() []command {
	return []command{
		{Name: "run", Summary: "run the daemon", Run: cmdRun},
		{Name: "demo", Summary: "run the whole pipeline with a simulated meter and endpoint", Run: cmdDemo},
		{Name: "sim", Summary: "a bench for the real daemon: simulated meter, fake endpoint, config", Run: cmdSim},
		{Name: "check-config", Summary: "validate a config file and exit", Run: cmdCheckConfig},
		{Name: "status", Summary: "show meter link, outbox and delivery state", Run: cmdStatus},
		{Name: "outbox", Summary: "inspect and repair the outbox (ls, show, retry, purge, export)", Run: cmdOutbox},
		{Name: "meter", Summary: "meter tools (monitor)", Run: cmdMeter},
		{Name: "driver", Summary: "the driver the meter is told about (set, clear, show)", Run: cmdDriver},
		{Name: "version", Summary: "print version, commit, build time and platform", Run: cmdVersion},
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return cli.Dispatch(ctx, "agent", "[flags]", commands(), args, stdout, stderr)
}

func exitCode(err error, stderr io.Writer) int { return cli.ExitCode("agent", err, stderr) }

func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	return cli.NewFlagSet("agent", name, synopsis, stderr)
}

// parseFlags parses args, which must all be flags.
func parseFlags(fs *flag.FlagSet, args []string) error { return cli.Parse(fs, args, 0) }

// parseSome parses the flags up to the first argument that is not one.
func parseSome(fs *flag.FlagSet, args []string) error { return cli.Parse(fs, args, -1) }

const defaultConfigPath = "/etc/taxi-agent/agent.toml"
