// Package cli is the command-line frame that taxi-agent and taxi-gateway
// share: dispatch to subcommands, flag sets that report a mistake instead
// of exiting, and the exit status systemd relies on (2 for a usage or
// config mistake, which the units do not restart; 1 for any other error).
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"taxi-agent/internal/config"
)

// ErrUsage marks a command-line mistake; the usage has been printed.
var ErrUsage = errors.New("usage")

// Command is one subcommand.
type Command struct {
	Name    string
	Summary string
	Run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// Dispatch runs the command args[0] names, with the rest of args. prog is
// the command line so far ("agent", "agent outbox"), synopsis what follows
// the command's name in the usage line. No command, or an unknown one, is
// ErrUsage after the usage; -h, -help or help prints the usage and is nil.
func Dispatch(ctx context.Context, prog, synopsis string, cmds []Command, args []string, stdout, stderr io.Writer) error {
	help := len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "help")
	if len(args) > 0 && !help {
		for _, c := range cmds {
			if c.Name == args[0] {
				return c.Run(ctx, args[1:], stdout, stderr)
			}
		}
		fmt.Fprintf(stderr, "%s: unknown command %q\n", prog, args[0])
	}
	width := 0
	for _, c := range cmds {
		width = max(width, len(c.Name))
	}
	fmt.Fprintf(stderr, "usage: %s <command> %s\n\ncommands:\n", prog, synopsis)
	for _, c := range cmds {
		fmt.Fprintf(stderr, "  %-*s %s\n", width, c.Name, c.Summary)
	}
	fmt.Fprintf(stderr, "\nRun '%s <command> -h' for a command's flags.\n", prog)
	if help {
		return nil
	}
	return ErrUsage
}

// ExitCode maps the error of a command to the process exit status, and
// prints it: 0 for success or -h, 2 for a usage mistake or config.Problems
// (one line each), 1 otherwise.
func ExitCode(prog string, err error, stderr io.Writer) int {
	var problems config.Problems
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, ErrUsage):
		return 2
	case errors.As(err, &problems):
		fmt.Fprintf(stderr, "config has %d problem(s):\n", len(problems))
		for _, p := range problems {
			fmt.Fprintf(stderr, "  %s\n", p)
		}
		return 2
	}
	fmt.Fprintf(stderr, "%s: %v\n", prog, err)
	return 1
}

// NewFlagSet returns a flag set for `prog name` that reports errors
// instead of exiting and prints "usage: prog name synopsis" to stderr.
func NewFlagSet(prog, name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s %s %s\n", prog, name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// Parse parses args and allows at most maxArgs arguments after the flags
// (-1: any number). A stray argument is a mistake, not ignored:
// `check-config other.toml` would otherwise check the default file and say
// it is ok. A mistake is ErrUsage after the usage.
func Parse(fs *flag.FlagSet, args []string, maxArgs int) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return ErrUsage
	}
	if maxArgs >= 0 && fs.NArg() > maxArgs {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(maxArgs))
		fs.Usage()
		return ErrUsage
	}
	return nil
}

// NewLogger returns the daemon's slog logger on w at level ("debug",
// "info", "warn", "error"; validated by the config) in format "text" or
// "json". Under systemd (stderr connected to journald) a text line leaves
// the time out: journald stamps each line itself.
func NewLogger(level, format string, w io.Writer) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	if w == os.Stderr && os.Getenv("JOURNAL_STREAM") != "" {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
