package outbox

import "time"

// Event types, as the punch API spells them.
const (
	SignIn  = "SIGN_IN"
	SignOut = "SIGN_OUT"
)

// Event is the punch the uploader sends: exactly the API's body fields.
type Event struct {
	Type          string `json:"event_type"`     // SignIn or SignOut
	DriverLicense string `json:"driver_license"` // 从业资格证号
	PlateNumber   string `json:"plate_number"`   // configured full plate, e.g. 粤B12345
	RegionID      int64  `json:"region_id"`      // 行政区划代码
	// EventTime is 2006-01-02T15:04:05.000+08:00, or "" while the event is
	// held because the wall clock was not trusted at receipt.
	EventTime string `json:"event_time"`
}

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
	ID       uint64 `json:"id"`
	State    State  `json:"state"`
	Event    Event  `json:"event"`
	Identity string `json:"identity"` // de-duplication key, see docs/meter-protocol.md

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
