package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"

	"taxi-agent/internal/outbox"
)

func cmdOutboxExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("outbox export", "-config FILE [-format jsonl|csv] > FILE", stderr)
	path := fs.String("config", defaultConfigPath, "config file")
	format := fs.String("format", "jsonl", "jsonl (one JSON object per line) or csv")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *format != "jsonl" && *format != "csv" {
		return usageError(fs, "-format %q: use jsonl or csv", *format)
	}
	s, err := connect(ctx, *path, false, stderr)
	if err != nil {
		return err
	}
	defer s.Close()

	bw := bufio.NewWriter(stdout)
	var write func(outbox.Record) error
	var flush func() error
	switch *format {
	case "jsonl":
		enc := json.NewEncoder(bw)
		enc.SetEscapeHTML(false)
		write = func(r outbox.Record) error { return enc.Encode(recordView(r)) }
		flush = bw.Flush
	case "csv":
		cw := csv.NewWriter(bw)
		if err := cw.Write(csvHeader); err != nil {
			return err
		}
		write = func(r outbox.Record) error { return cw.Write(csvRow(r)) }
		flush = func() error {
			cw.Flush()
			if err := cw.Error(); err != nil {
				return err
			}
			return bw.Flush()
		}
	}
	n := 0
	err = s.Outbox.Export(func(r outbox.Record) error {
		n++
		return write(r)
	})
	if ferr := flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return fmt.Errorf("export outbox: %w", err)
	}
	fmt.Fprintf(stderr, "exported %d record(s)\n", n)
	return nil
}
