package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"taxi-agent/internal/outbox"
)

func cmdOutboxRetry(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("outbox retry", "-config FILE ID | -all-dead", stderr)
	path := fs.String("config", defaultConfigPath, "config file")
	allDead := fs.Bool("all-dead", false, "move every dead record back to pending")
	id, err := parseTarget(fs, args, allDead)
	if err != nil {
		return err
	}
	s, err := connect(ctx, *path, true, stderr)
	if err != nil {
		return err
	}
	defer s.Close()
	// when says when the uploader will pick the records up.
	when := func(them string) string {
		if s.Daemon == nil {
			return "the agent sends " + them + " when it starts"
		}
		return "the agent sends " + them + " next, in order"
	}

	if *allDead {
		n, err := s.Outbox.RetryAllDead()
		if err != nil {
			return fmt.Errorf("retry dead records: %w", err)
		}
		if n == 0 {
			_, err = fmt.Fprintln(stdout, "no dead records")
			return err
		}
		them := "them"
		if n == 1 {
			them = "it"
		}
		_, err = fmt.Fprintf(stdout, "%d dead record(s) moved back to pending; %s\n", n, when(them))
		return err
	}
	if err := s.Outbox.Retry(id); err != nil {
		return explainNotDead(s.Outbox, id, "retried", err)
	}
	_, err = fmt.Fprintf(stdout, "record %d moved back to pending; %s\n", id, when("it"))
	return err
}

// explainNotDead turns the outbox's refusal into a sentence that says what
// the record is doing instead.
func explainNotDead(ob interface {
	Get(uint64) (outbox.Record, error)
}, id uint64, verb string, err error) error {
	switch {
	case errors.Is(err, outbox.ErrNotFound):
		return fmt.Errorf("no record %d in the outbox", id)
	case errors.Is(err, outbox.ErrNotDead):
		if r, gerr := ob.Get(id); gerr == nil {
			return fmt.Errorf("record %d is %s, not dead: only dead records can be %s", id, r.State, verb)
		}
		return fmt.Errorf("record %d is not dead: only dead records can be %s", id, verb)
	}
	return fmt.Errorf("record %d: %w", id, err)
}
