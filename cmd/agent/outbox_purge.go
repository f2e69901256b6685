package main

import (
	"context"
	"fmt"
	"io"

	"taxi-agent/internal/admin"
	"taxi-agent/internal/outbox"
)

func cmdOutboxPurge(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("outbox purge", "-config FILE (ID | -all-dead) -yes", stderr)
	path := fs.String("config", defaultConfigPath, "config file")
	allDead := fs.Bool("all-dead", false, "delete every dead record")
	yes := fs.Bool("yes", false, "really delete: purged records are gone for good")
	id, err := parseTarget(fs, args, allDead)
	if err != nil {
		return err
	}
	// Without -yes only look, so the file is opened read-only.
	s, err := connect(ctx, *path, *yes, stderr)
	if err != nil {
		return err
	}
	defer s.Close()
	if !*yes {
		return refusePurge(s, *path, id, stderr)
	}

	if *allDead {
		n, err := s.Outbox.PurgeAllDead()
		if err != nil {
			return fmt.Errorf("purge dead records: %w", err)
		}
		_, err = fmt.Fprintf(stdout, "%d dead record(s) deleted\n", n)
		return err
	}
	if err := s.Outbox.Purge(id); err != nil {
		return explainNotDead(s.Outbox, id, "purged", err)
	}
	_, err = fmt.Fprintf(stdout, "record %d deleted\n", id)
	return err
}

// refusePurge says what -yes would delete and refuses. Asking for a record
// that is not dead is an error of its own, so the technician is not told
// to add -yes to something that would fail anyway.
func refusePurge(s *admin.Session, configPath string, id uint64, stderr io.Writer) error {
	if id != 0 {
		r, err := s.Outbox.Get(id)
		if err != nil {
			return explainNotDead(s.Outbox, id, "purged", err)
		}
		if r.State != outbox.Dead {
			return explainNotDead(s.Outbox, id, "purged", outbox.ErrNotDead)
		}
		fmt.Fprintf(stderr, "purge deletes for good: record %d, %s of driver %s at %s, dead because %s\n",
			r.ID, r.Event.Type, r.Event.DriverLicense, eventTime(r), orDash(r.DeadReason))
	} else {
		n, err := countDead(s.Outbox)
		if err != nil {
			return err
		}
		if n == 0 {
			fmt.Fprintln(stderr, "no dead records: nothing to purge")
			return nil
		}
		fmt.Fprintf(stderr, "purge deletes for good: %d dead record(s) (%s lists them)\n", n, hint("outbox", "ls", "-config", configPath, "-state", "dead"))
	}
	fmt.Fprintf(stderr, "not deleted: add -yes to confirm (keep a copy first with %s)\n", hint("outbox", "export", "-config", configPath))
	return errUsage
}

func countDead(ob admin.OutboxStore) (int, error) {
	n := 0
	var after uint64
	for {
		recs, next, err := ob.List(outbox.Dead, after, 1000)
		if err != nil {
			return 0, fmt.Errorf("count dead records: %w", err)
		}
		n += len(recs)
		if next == 0 {
			return n, nil
		}
		after = next
	}
}
