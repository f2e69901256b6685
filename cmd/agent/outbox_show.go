package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"taxi-agent/internal/outbox"
)

func cmdOutboxShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("outbox show", "-config FILE [-json] ID", stderr)
	path := fs.String("config", defaultConfigPath, "config file")
	asJSON := fs.Bool("json", false, "print the record as one JSON object")
	pos, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return errUsage
	}
	id, err := parseID(pos[0])
	if err != nil {
		return err
	}
	s, err := connect(ctx, *path, false, stderr)
	if err != nil {
		return err
	}
	defer s.Close()
	r, err := s.Outbox.Get(id)
	if errors.Is(err, outbox.ErrNotFound) {
		return fmt.Errorf("no record %d in the outbox (delivered records are pruned after the retention period)", id)
	}
	if err != nil {
		return fmt.Errorf("read record %d: %w", id, err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		return enc.Encode(recordView(r))
	}
	return printRecord(stdout, r, time.Now())
}

// printRecord writes one record and its history as aligned text.
func printRecord(w io.Writer, r outbox.Record, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, args...)...) }
	when := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return clockTime(t) + " (" + ago(t, now) + ")"
	}

	line("record", "%d", r.ID)
	line("state", "%s", r.State)
	line("event", "%s", r.Event.Type)
	line("driver licence", "%s", r.Event.DriverLicense)
	line("plate", "%s", r.Event.PlateNumber)
	line("region", "%d", r.Event.RegionID)
	line("event time", "%s", eventTime(r))
	line("received", "%s", when(r.ReceivedAt))
	if !r.MeterTime.IsZero() {
		line("meter time", "%s", clockTime(r.MeterTime))
	}
	if r.Event.EventTime == "" {
		// Held: it is stamped from this once the clock is trusted.
		line("boot", "id %s, %s after boot", orDash(r.BootID), r.Monotonic.Round(time.Millisecond))
	}
	line("identity", "%s", r.Identity)
	line("attempts", "%d", r.Attempts)
	if r.Requeued > 0 {
		line("requeued", "%d time(s) by a technician (dead → pending)", r.Requeued)
	}
	switch r.State {
	case outbox.Pending:
		next := "due now"
		if r.NextAttempt.After(now) {
			next = when(r.NextAttempt)
		}
		line("next attempt", "%s", next)
	case outbox.Delivered:
		line("delivered", "%s", when(r.DeliveredAt))
	case outbox.Dead:
		line("dead since", "%s", when(r.DeadAt))
		line("dead because", "%s", orDash(r.DeadReason))
	}
	if e := r.LastError; e != nil {
		line("last error", "%s", when(e.At))
		if e.Status != 0 {
			line("  HTTP status", "%d", e.Status)
		}
		if e.Code != "" {
			line("  code", "%s", e.Code)
		}
		if e.Message != "" {
			line("  message", "%s", e.Message)
		}
		if e.RequestID != "" {
			line("  Request-ID", "%s", e.RequestID)
		}
		if e.Err != "" {
			line("  error", "%s", e.Err)
		}
	} else {
		line("last error", "none")
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
