package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"taxi-agent/internal/outbox"
)

func cmdOutboxLs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("outbox ls", "-config FILE [-state pending|dead|delivered] [-limit N] [-after ID] [-json]", stderr)
	path := fs.String("config", defaultConfigPath, "config file")
	stateFlag := fs.String("state", "", "only records in this state: pending, dead or delivered")
	limit := fs.Int("limit", 50, "at most this many records (0: all)")
	after := fs.Uint64("after", 0, "start after this record id (for the next page)")
	asJSON := fs.Bool("json", false, "one JSON object per line")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	state, ok := parseState(*stateFlag)
	switch {
	case !ok:
		return usageError(fs, "-state %q: use pending, dead or delivered", *stateFlag)
	case *limit < 0:
		return usageError(fs, "-limit %d: use 0 (all) or a positive number", *limit)
	}
	s, err := connect(ctx, *path, false, stderr)
	if err != nil {
		return err
	}
	defer s.Close()

	now := time.Now()
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	if !*asJSON {
		fmt.Fprintln(tw, "ID\tSTATE\tTYPE\tDRIVER LICENCE\tEVENT TIME\tATTEMPTS\tNEXT / DONE\tLAST ERROR")
	}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	// Delivery is strictly in order: only the oldest pending record is
	// being tried, the others wait behind it.
	var head uint64
	if hs, _, err := s.Outbox.List(outbox.Pending, 0, 1); err == nil && len(hs) > 0 {
		head = hs[0].ID
	}
	shown, cursor, more := 0, *after, false
	for {
		want := 500
		if *limit > 0 {
			want = min(want, *limit-shown)
		}
		recs, next, err := s.Outbox.List(state, cursor, want)
		if err != nil {
			return fmt.Errorf("list outbox: %w", err)
		}
		for _, r := range recs {
			if *asJSON {
				if err := enc.Encode(recordView(r)); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.ID, r.State, r.Event.Type,
					r.Event.DriverLicense, eventTime(r), r.Attempts, progress(r, head, now), briefError(r.LastError))
			}
			cursor = r.ID
		}
		shown += len(recs)
		if next == 0 || *limit > 0 && shown >= *limit {
			more = next != 0
			break
		}
		cursor = next
	}
	switch {
	case *asJSON:
	case shown == 0:
		what := "records"
		if state != "" {
			what = string(state) + " records"
		}
		fmt.Fprintf(stdout, "no %s\n", what)
	default:
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if more {
		next := []string{"outbox", "ls", "-config", *path}
		if state != "" {
			next = append(next, "-state", string(state))
		}
		if *limit != 50 {
			next = append(next, "-limit", strconv.Itoa(*limit))
		}
		next = append(next, "-after", strconv.FormatUint(cursor, 10))
		fmt.Fprintf(stderr, "(more records: %s for the next page, -limit 0 for all)\n", hint(next...))
	}
	return nil
}

// eventTime is the record's event time, or why there is none yet.
func eventTime(r outbox.Record) string {
	if r.Event.EventTime == "" {
		return "(held: clock not trusted)"
	}
	return r.Event.EventTime
}

// progress says where a record is going: the next attempt, its place
// behind the head, or when it was delivered or dead-lettered.
func progress(r outbox.Record, head uint64, now time.Time) string {
	switch r.State {
	case outbox.Delivered:
		return "delivered " + ago(r.DeliveredAt, now)
	case outbox.Dead:
		return "dead " + ago(r.DeadAt, now)
	}
	if head != 0 && r.ID != head {
		return "after " + strconv.FormatUint(head, 10)
	}
	if r.NextAttempt.IsZero() || !r.NextAttempt.After(now) {
		return "due now"
	}
	return "next " + ago(r.NextAttempt, now)
}

// briefError is a failed attempt in a table cell: WeChat Pay's answer
// without its Request-ID ('outbox show' has it), or the end of a network
// error, where the cause is.
func briefError(e *outbox.AttemptError) string {
	if e == nil {
		return ""
	}
	if e.Status != 0 {
		s := "HTTP " + strconv.Itoa(e.Status)
		for _, p := range []string{e.Code, e.Message} {
			if p != "" {
				s += " " + p
			}
		}
		if e.Err != "" {
			// An answer refused although its status looked right, such as a
			// 204 whose signature did not verify: say why.
			s += ": " + strings.TrimPrefix(e.Err, "verify answer: ")
		}
		return shorten(s, 60)
	}
	msg := withoutURL(e.Err)
	if r := []rune(msg); len(r) > 60 {
		msg = "…" + string(r[len(r)-59:])
	}
	return msg
}

// withoutURL drops the `Post "https://…": ` that starts a network error:
// the URL is the same for every event.
func withoutURL(msg string) string {
	if i := strings.Index(msg, `": `); strings.HasPrefix(msg, "Post \"") && i > 0 {
		return msg[i+3:]
	}
	return msg
}
