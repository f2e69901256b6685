package main

import (
	"context"
	"fmt"
	"io"
)

func cmdDriverClear(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("driver clear", "-config FILE", stderr)
	path := fs.String("config", defaultConfigPath, "config file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	s, err := connect(ctx, *path, true, stderr)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Outbox.ClearDriver(); err != nil {
		return fmt.Errorf("clear driver: %w", err)
	}
	_, err = fmt.Fprintln(stdout, "driver cleared; the meter's requests are refused until one is set")
	return err
}
