package admin_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"taxi-agent/internal/admin"
	"taxi-agent/internal/admin/admintest"
	"taxi-agent/internal/outbox"
	"taxi-agent/internal/punch"
)

// benchOutbox is a real outbox with n pending records.
func benchOutbox(b *testing.B, n int) *outbox.Outbox {
	b.Helper()
	ob := admintest.OpenOutbox(b, filepath.Join(b.TempDir(), "outbox.db"))
	at := time.Date(2026, 11, 28, 2, 30, 0, 0, time.UTC)
	for i := range n {
		_, _, err := ob.Enqueue(outbox.Record{
			Event: punch.Event{Type: punch.SignIn, DriverLicense: admintest.LicenceA, PlateNumber: admintest.Plate,
				RegionID: 440300, EventTime: "2026-11-28T10:30:00.000+08:00"},
			Identity: "bench|" + time.Duration(i).String(), ReceivedAt: at,
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return ob
}

// BenchmarkListPage compares one page of 100 records read through the
// socket (what `agent outbox ls` does with the daemon running) with the
// same page read from the open outbox. The ratio is the socket's cost.
func BenchmarkListPage(b *testing.B) {
	ob := benchOutbox(b, 100)
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			if recs, _, err := ob.List("", 0, 100); err != nil || len(recs) != 100 {
				b.Fatal(len(recs), err)
			}
		}
	})
	b.Run("socket", func(b *testing.B) {
		sock := admintest.Serve(b, &admintest.Backend{Store: ob}, nil)
		c := admin.Dial(sock)
		defer c.Close()
		remote := c.Outbox(context.Background())
		for b.Loop() {
			if recs, _, err := remote.List("", 0, 100); err != nil || len(recs) != 100 {
				b.Fatal(len(recs), err)
			}
		}
	})
}

// BenchmarkStats is `agent status`'s outbox part, direct and through the
// socket.
func BenchmarkStats(b *testing.B) {
	ob := benchOutbox(b, 100)
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			if _, err := ob.Stats(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("socket", func(b *testing.B) {
		sock := admintest.Serve(b, &admintest.Backend{Store: ob}, nil)
		c := admin.Dial(sock)
		defer c.Close()
		remote := c.Outbox(context.Background())
		for b.Loop() {
			if _, err := remote.Stats(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
