package admin

import (
	"log/slog"
	"time"
)

// LogValue logs the status; the meter's part logs its driver licences
// masked (meter.LinkStats' own log form).
func (s Status) LogValue() slog.Value {
	return slog.GroupValue(slog.Any("version", s.Version), slog.Int("pid", s.PID),
		slog.Time("started_at", s.StartedAt), slog.Duration("uptime", time.Duration(s.Uptime)),
		slog.Any("meter", s.Meter), slog.Any("held_in_memory", s.Held), slog.Any("outbox", s.Outbox),
		slog.Any("uploader", s.Uploader), slog.Any("clock", s.Clock),
		slog.Any("connectivity", s.Connectivity), slog.String("quarantined", s.Quarantined))
}
