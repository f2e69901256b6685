package main

import (
	"strconv"
	"time"

	"taxi-agent/internal/outbox"
)

// recordJSON is a record as `outbox ls -json`, `show -json` and `export`
// print it: flat, with the punch fields at the top. The driver licence is
// whole: the technician needs it.
type recordJSON struct {
	ID            uint64               `json:"id"`
	State         outbox.State         `json:"state"`
	EventType     string               `json:"event_type"`
	DriverLicense string               `json:"driver_license"`
	PlateNumber   string               `json:"plate_number"`
	RegionID      int64                `json:"region_id"`
	EventTime     string               `json:"event_time"` // "" while held for an untrusted clock
	Attempts      int                  `json:"attempts"`
	LastError     *outbox.AttemptError `json:"last_error"`
	NextAttempt   *time.Time           `json:"next_attempt,omitempty"`
	DeliveredAt   *time.Time           `json:"delivered_at,omitempty"`
	DeadAt        *time.Time           `json:"dead_at,omitempty"`
	DeadReason    string               `json:"dead_reason,omitempty"`
	Requeued      int                  `json:"requeued,omitempty"` // times a technician moved it back from dead
	Identity      string               `json:"identity"`
	ReceivedAt    time.Time            `json:"received_at"`
	MeterTime     *time.Time           `json:"meter_time,omitempty"`
	BootID        string               `json:"boot_id,omitempty"`
	MonotonicSecs float64              `json:"monotonic_seconds,omitempty"`
}

func recordView(r outbox.Record) recordJSON {
	if r.State != outbox.Pending {
		r.NextAttempt = time.Time{} // a leftover of its pending days
	}
	return recordJSON{
		ID: r.ID, State: r.State, EventType: r.Event.Type, DriverLicense: r.Event.DriverLicense,
		PlateNumber: r.Event.PlateNumber, RegionID: r.Event.RegionID, EventTime: r.Event.EventTime,
		Attempts: r.Attempts, LastError: r.LastError, NextAttempt: timePtr(r.NextAttempt),
		DeliveredAt: timePtr(r.DeliveredAt), DeadAt: timePtr(r.DeadAt), DeadReason: r.DeadReason, Requeued: r.Requeued,
		Identity: r.Identity, ReceivedAt: r.ReceivedAt, MeterTime: timePtr(r.MeterTime),
		BootID: r.BootID, MonotonicSecs: r.Monotonic.Seconds(),
	}
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// csvHeader and csvRow are the columns of `export -format csv`.
var csvHeader = []string{
	"id", "state", "event_type", "driver_license", "plate_number", "region_id", "event_time",
	"attempts", "last_error_at", "last_error_status", "last_error_code", "last_error_message",
	"last_error_request_id", "last_error", "next_attempt", "delivered_at", "dead_at", "dead_reason", "requeued",
	"identity", "received_at", "meter_time", "boot_id", "monotonic_seconds",
}

func csvRow(r outbox.Record) []string {
	if r.State != outbox.Pending {
		r.NextAttempt = time.Time{}
	}
	e := r.LastError
	if e == nil {
		e = &outbox.AttemptError{}
	}
	status := ""
	if e.Status != 0 {
		status = strconv.Itoa(e.Status)
	}
	mono := ""
	if r.Monotonic != 0 {
		mono = strconv.FormatFloat(r.Monotonic.Seconds(), 'f', 3, 64)
	}
	return []string{
		strconv.FormatUint(r.ID, 10), string(r.State), r.Event.Type, r.Event.DriverLicense,
		r.Event.PlateNumber, strconv.FormatInt(r.Event.RegionID, 10), r.Event.EventTime,
		strconv.Itoa(r.Attempts), rfc3339(e.At), status, e.Code, e.Message, e.RequestID, e.Err,
		rfc3339(r.NextAttempt), rfc3339(r.DeliveredAt), rfc3339(r.DeadAt), r.DeadReason, strconv.Itoa(r.Requeued),
		r.Identity, rfc3339(r.ReceivedAt), rfc3339(r.MeterTime), r.BootID, mono,
	}
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339Nano)
}
