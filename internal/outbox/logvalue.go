package outbox

import (
	"log/slog"
	"strings"

	"taxi-agent/internal/redact"
)

// LogValue logs the record with its driver licence masked to the last four
// characters, in the event (punch.Event's own log form) and in the
// identity, which holds the licence too.
func (r Record) LogValue() slog.Value {
	id := r.Identity
	if l := r.Event.DriverLicense; l != "" {
		id = strings.ReplaceAll(id, l, redact.Licence(l))
	}
	a := []slog.Attr{
		slog.Uint64("id", r.ID), slog.String("state", string(r.State)),
		slog.Any("event", r.Event), slog.String("identity", id),
		slog.Time("received_at", r.ReceivedAt), slog.Int("attempts", r.Attempts),
	}
	if !r.NextAttempt.IsZero() {
		a = append(a, slog.Time("next_attempt", r.NextAttempt))
	}
	if r.LastError != nil {
		a = append(a, slog.Any("last_error", *r.LastError))
	}
	if !r.DeliveredAt.IsZero() {
		a = append(a, slog.Time("delivered_at", r.DeliveredAt))
	}
	if r.DeadReason != "" {
		a = append(a, slog.String("dead_reason", r.DeadReason))
	}
	return slog.GroupValue(a...)
}

// LogValue logs the open shift's driver with the licence masked.
func (d Driver) LogValue() slog.Value {
	return slog.GroupValue(slog.String("driver_license", redact.Licence(d.Licence)),
		slog.String("company_licence", d.Company), slog.Time("set_at", d.SetAt))
}
