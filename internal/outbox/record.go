package outbox

import (
	"time"

	"taxi-agent/internal/punch"
)

// State is where a record is in its life.
type State string

// The states of a record.
const (
	Pending   State = "pending"
	Delivered State = "delivered"
	Dead      State = "dead"
)

// AttemptError is what one failed delivery attempt left behind.
type AttemptError struct {
	At        time.Time `json:"at"`
	Status    int       `json:"status,omitempty"`     // HTTP status, 0 for a network error
	Code      string    `json:"code,omitempty"`       // WeChat Pay error code
	Message   string    `json:"message,omitempty"`    // WeChat Pay error message
	RequestID string    `json:"request_id,omitempty"` // Request-ID header
	Err       string    `json:"error,omitempty"`      // transport or verification error
}

// Record is one stored event with its delivery history.
type Record struct {
	ID       uint64      `json:"id"`
	State    State       `json:"state"`
	Event    punch.Event `json:"event"`
	Identity string      `json:"identity"` // de-duplication key, see docs/meter-protocol.md

	ReceivedAt time.Time     `json:"received_at"`         // wall clock at receipt, maybe untrusted
	MeterTime  time.Time     `json:"meter_time,omitzero"` // the meter's own time for the event
	BootID     string        `json:"boot_id,omitempty"`   // kernel boot id at receipt
	Monotonic  time.Duration `json:"monotonic,omitempty"` // CLOCK_BOOTTIME at receipt

	Attempts    int           `json:"attempts"` // delivery tries: failed ones, and the one that delivered or dead-lettered it
	NextAttempt time.Time     `json:"next_attempt,omitzero"`
	LastError   *AttemptError `json:"last_error,omitempty"`
	DeliveredAt time.Time     `json:"delivered_at,omitzero"`
	DeadAt      time.Time     `json:"dead_at,omitzero"`
	DeadReason  string        `json:"dead_reason,omitempty"`
	Requeued    int           `json:"requeued,omitempty"` // times a technician moved it from dead back to pending
}
