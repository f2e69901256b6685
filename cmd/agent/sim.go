package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"taxi-agent/internal/simrig"
)

// cmdSim runs the bench rig, or tells a running one what to do.
func cmdSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sim", "-dir DIR [-interval D] [signin | signout | endpoint down|up|reject]", stderr)
	dir := fs.String("dir", "", "bench directory: keys, agent.toml, outbox and sockets (required)")
	interval := fs.Duration("interval", 0, "sign a driver in or out every interval (0: only on demand)")
	if err := parseSome(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		fmt.Fprintln(stderr, "sim: -dir is required")
		fs.Usage()
		return errUsage
	}
	if fs.NArg() == 0 {
		return simrig.Bench(ctx, simrig.BenchOptions{Dir: *dir, Interval: *interval, Program: program(), Out: stdout})
	}
	a, err := simrig.ParseAction(fs.Args())
	if err != nil {
		fmt.Fprintf(stderr, "sim: %v\n", err)
		fs.Usage()
		return errUsage
	}
	err = simrig.Control(ctx, *dir, a, stdout)
	if errors.Is(err, simrig.ErrRefused) {
		return fmt.Errorf("sim %s: %w", a, err)
	}
	return err
}

// program is how the bench names this binary in the commands it prints: as
// it was invoked, "taxi-agent" when found on PATH, "./agent" when run from
// a build directory.
func program() string {
	if len(os.Args) > 0 && os.Args[0] != "" {
		return os.Args[0]
	}
	return "taxi-agent"
}
