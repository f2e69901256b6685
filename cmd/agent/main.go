// Command agent is taxi-agent: it reads driver sign-in and sign-out from the
// taximeter, keeps them in a durable outbox and delivers them to WeChat Pay.
// It also hosts the field technician's CLI. See README.md.
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
		{"run", "run the daemon", cmdRun},
		{"demo", "run the whole pipeline with a simulated meter and endpoint", cmdDemo},
		{"sim", "a bench for the real daemon: simulated meter, fake endpoint, config", cmdSim},
		{"check-config", "validate a config file and exit", cmdCheckConfig},
		{"status", "show meter link, outbox and delivery state", cmdStatus},
		{"outbox", "inspect and repair the outbox (ls, show, retry, purge, export)", cmdOutbox},
		{"meter", "meter tools (monitor)", cmdMeter},
		{"driver", "the driver the meter is told about (set, clear, show)", cmdDriver},
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
	fmt.Fprintf(stderr, "agent: unknown command %q\n", args[0])
	usage(stderr)
	return errUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: agent <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-13s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'agent <command> -h' for a command's flags.")
}

// exitCode maps an error to the process exit status: 0 success, 2 for a
// config or usage error (systemd does not restart on it), 1 otherwise.
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
	fmt.Fprintf(stderr, "agent: %v\n", err)
	return 1
}

// newFlagSet returns a flag set that reports errors instead of exiting and
// prints its usage to stderr.
func newFlagSet(name, args string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: agent %s %s\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, which must all be flags, and turns a mistake
// into errUsage. A stray argument is a mistake, not ignored: `check-config
// other.toml` would otherwise check the default file and say it is ok.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := parseSome(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	return nil
}

// parseSome parses the flags up to the first argument that is not one.
func parseSome(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}

const defaultConfigPath = "/etc/taxi-agent/agent.toml"
