// Command gateway is taxi-gateway: it holds the merchant key for a fleet of
// terminals in gateway mode, relays their punches to WeChat Pay within one
// fleet-wide rate, and enrolls them with the fleet CA. See README.md,
// "Gateway mode".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"taxi-agent/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// errUsage marks a command-line mistake; the usage has been printed.
var errUsage = errors.New("usage")

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"run", "run the gateway", cmdRun},
		{"ca", "fleet CA (init)", cmdCA},
		{"issue", "issue a terminal's (-plate) or the gateway's (-host) certificate", cmdIssue},
		{"revoke", "revoke a certificate by serial or -plate", cmdRevoke},
		{"status", "terminals seen with their last punch, certificates never seen", cmdStatus},
		{"check-config", "validate a config file and exit", cmdCheckConfig},
		{"version", "print version, commit, build time and platform", cmdVersion},
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "taxi-gateway: unknown command %q\n", args[0])
	usage(stderr)
	return errUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: taxi-gateway <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-13s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'taxi-gateway <command> -h' for a command's flags.")
}

// exitCode maps an error to the exit status: 0 success, 2 for a config or
// usage error (systemd does not restart on it), 1 otherwise.
func exitCode(err error, stderr io.Writer) int {
	var problems config.Problems
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.As(err, &problems):
		fmt.Fprintf(stderr, "config has %d problem(s):\n", len(problems))
		for _, p := range problems {
			fmt.Fprintf(stderr, "  %s\n", p)
		}
		return 2
	}
	fmt.Fprintf(stderr, "taxi-gateway: %v\n", err)
	return 1
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(name, args string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: taxi-gateway %s %s\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and allows at most maxArgs positional arguments.
func parseFlags(fs *flag.FlagSet, args []string, maxArgs int) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > maxArgs {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(maxArgs))
		fs.Usage()
		return errUsage
	}
	return nil
}

const (
	defaultConfigPath = "/etc/taxi-gateway/gateway.toml"
	defaultCADir      = "/etc/taxi-gateway/ca"
)
