// Package punch is the driver attendance punch the agent exists to deliver:
// a sign-in or sign-out, with exactly the body fields of WeChat Pay's
// POST /v3/taxi-invoice/attendance/punch (docs/wechatpay.md).
//
// It is the one home of the event types SIGN_IN and SIGN_OUT and of the
// punch's log form: Event's LogValue masks the driver licence to its last
// four characters, so no call site that logs an event can leak one.
package punch

import (
	"log/slog"

	"taxi-agent/internal/redact"
)

// Event types, as the punch API and the de-duplication identity spell
// them.
const (
	SignIn  = "SIGN_IN"
	SignOut = "SIGN_OUT"
)

// Event is one punch: exactly the API's body fields.
type Event struct {
	Type          string `json:"event_type"`     // SignIn or SignOut
	DriverLicense string `json:"driver_license"` // 从业资格证号
	PlateNumber   string `json:"plate_number"`   // configured full plate, e.g. 粤B12345
	RegionID      int64  `json:"region_id"`      // 行政区划代码
	// EventTime is 2006-01-02T15:04:05.000+08:00, or "" while the event is
	// held because the wall clock was not trusted at receipt.
	EventTime string `json:"event_time"`
}

// LogValue logs the event with the driver licence masked to its last four
// characters.
func (e Event) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("event_type", e.Type),
		slog.String("driver_license", redact.Licence(e.DriverLicense)),
		slog.String("plate_number", e.PlateNumber),
		slog.Int64("region_id", e.RegionID),
		slog.String("event_time", e.EventTime),
	)
}
