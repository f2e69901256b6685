package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"taxi-agent/internal/outbox"
)

func cmdDriverSet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("driver set", "-config FILE -licence L [-company C]", stderr)
	path := fs.String("config", defaultConfigPath, "config file")
	licence := fs.String("licence", "", "the driver's 从业资格证号 (up to 19 characters), from the qualification card")
	company := fs.String("company", "", "the company's 经营许可证号 (up to 16 characters)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *licence == "" {
		fmt.Fprintln(stderr, "driver set: -licence is required")
		fs.Usage()
		return errUsage
	}
	s, err := connect(ctx, *path, true, stderr)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Outbox.SetDriver(outbox.Driver{Licence: *licence, Company: *company}); err != nil {
		if errors.Is(err, outbox.ErrBadDriver) {
			return fmt.Errorf("driver not set: %w", err)
		}
		return fmt.Errorf("set driver: %w", err)
	}
	if cfg, err := loadToolConfig(*path); err == nil {
		noteIdentity(cfg, stderr)
	}
	company2 := ""
	if *company != "" {
		company2 = ", company " + *company
	}
	_, err = fmt.Fprintf(stdout, "driver set: licence %s%s; the meter's next request is answered with it\n", *licence, company2)
	return err
}
