// Command gateway is taxi-gateway: it holds the merchant key for a fleet of
// terminals in gateway mode, relays their punches to WeChat Pay within one
// fleet-wide rate, and enrolls them with the fleet CA. See README.md,
// "Gateway mode".
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
		{Name: "run", Summary: "run the gateway", Run: cmdRun},
		{Name: "ca", Summary: "fleet CA (init)", Run: cmdCA},
		{Name: "issue", Summary: "issue a terminal's (-plate) or the gateway's (-host) certificate", Run: cmdIssue},
		{Name: "revoke", Summary: "revoke a certificate by serial or -plate", Run: cmdRevoke},
		{Name: "status", Summary: "terminals seen with their last punch, certificates never seen", Run: cmdStatus},
		{Name: "check-config", Summary: "validate a config file and exit", Run: cmdCheckConfig},
		{Name: "version", Summary: "print version, commit, build time and platform", Run: cmdVersion},
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return cli.Dispatch(ctx, "taxi-gateway", "[flags]", commands(), args, stdout, stderr)
}

func exitCode(err error, stderr io.Writer) int { return cli.ExitCode("taxi-gateway", err, stderr) }

func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	return cli.NewFlagSet("taxi-gateway", name, synopsis, stderr)
}

// parseFlags parses args and allows at most maxArgs positional arguments.
func parseFlags(fs *flag.FlagSet, args []string, maxArgs int) error {
	return cli.Parse(fs, args, maxArgs)
}

const (
	defaultConfigPath = "/etc/taxi-gateway/gateway.toml"
	defaultCADir      = "/etc/taxi-gateway/ca"
)
