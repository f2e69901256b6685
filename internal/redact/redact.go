// Package redact keeps personal data out of logs: driver licences are shown
// by their last four characters only.
package redact

import (
	"log/slog"
	"strings"
)

// Licence masks all but the last four characters of a driver licence
// (从业资格证号): "42108319880906011X" becomes "**************011X".
func Licence(s string) string {
	r := []rune(s)
	if len(r) <= 4 {
		return strings.Repeat("*", len(r))
	}
	return strings.Repeat("*", len(r)-4) + string(r[len(r)-4:])
}

// LicenceValue is a driver licence that logs itself masked.
type LicenceValue string

// LogValue implements slog.LogValuer.
func (l LicenceValue) LogValue() slog.Value { return slog.StringValue(Licence(string(l))) }
