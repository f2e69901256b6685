package punchsim

import (
	"log/slog"

	"taxi-agent/internal/redact"
)

// LogValue logs the punch with the driver licence masked to its last four
// characters.
func (p Punch) LogValue() slog.Value {
	return slog.GroupValue(slog.String("event_type", p.EventType),
		slog.String("driver_license", redact.Licence(p.DriverLicense)),
		slog.String("plate_number", p.PlateNumber), slog.Int64("region_id", p.RegionID),
		slog.String("event_time", p.EventTime))
}

// LogValue logs the exchange; its punch logs the driver licence masked.
func (e Exchange) LogValue() slog.Value {
	a := []slog.Attr{slog.Int("seq", e.Seq), slog.Time("at", e.At), slog.String("request_id", e.RequestID),
		slog.String("path", e.Path), slog.String("rejection", e.Rejection), slog.String("detail", e.Detail),
		slog.String("fault", string(e.Fault)), slog.Int("status", e.Status), slog.Bool("accepted", e.Accepted)}
	if e.Punch != nil {
		a = append(a, slog.Any("punch", *e.Punch))
	}
	return slog.GroupValue(a...)
}
