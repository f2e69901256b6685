package harness

import (
	"fmt"
	"testing"

	"taxi-agent/internal/outbox"
)

// ReadOutbox reads every record of the outbox at path, oldest first,
// opening it read-only: the agent must not be running.
func ReadOutbox(path string) ([]outbox.Record, error) {
	ob, err := outbox.Open(path, outbox.Options{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("open outbox read-only: %w", err)
	}
	defer ob.Close()
	var recs []outbox.Record
	err = ob.Export(func(r outbox.Record) error {
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	return recs, nil
}

// ReadRecords is ReadOutbox for a test.
func ReadRecords(tb testing.TB, path string) []outbox.Record {
	tb.Helper()
	recs, err := ReadOutbox(path)
	if err != nil {
		tb.Fatal(err)
	}
	return recs
}
