package admin

import (
	"errors"
	"net/http"

	"taxi-agent/internal/outbox"
)

// The HTTP API on the socket. Bodies are JSON; errors are an errorBody with
// a code the Client maps back to the sentinel it came from.
const (
	pathPing        = "/v1/ping"
	pathStatus      = "/v1/status"
	pathStats       = "/v1/outbox/stats"
	pathRecords     = "/v1/outbox/records"
	pathRecord      = "/v1/outbox/records/{id}"
	pathRecordRetry = "/v1/outbox/records/{id}/retry"
	pathDead        = "/v1/outbox/dead"
	pathDeadRetry   = "/v1/outbox/dead/retry"
	pathExport      = "/v1/outbox/export"
	pathDriver      = "/v1/driver"
	maxPage         = 1000 // records per List answer
)

// ping is the answer to pathPing: who is serving.
type ping struct {
	PID     int    `json:"pid"`
	Version string `json:"version"`
}

// page is the answer to a List.
type page struct {
	Records   []outbox.Record `json:"records"`
	NextAfter uint64          `json:"next_after"`
}

// driverAnswer is the answer to GET pathDriver.
type driverAnswer struct {
	Set    bool           `json:"set"`
	Driver *outbox.Driver `json:"driver,omitempty"`
}

// count is the answer to the all-dead operations.
type count struct {
	Count int `json:"count"`
}

// exportLine is one line of the export stream: a record, then a final
// line with End (the number of records) or Error. A stream without its
// final line was cut short.
type exportLine struct {
	Record *outbox.Record `json:"record,omitempty"`
	End    *int           `json:"end,omitempty"`
	Error  *errorBody     `json:"error,omitempty"`
}

// errorBody is an error crossing the socket.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes, one per sentinel a caller may test for.
var errorCodes = []struct {
	code   string
	status int
	err    error
}{
	{"not_found", http.StatusNotFound, outbox.ErrNotFound},
	{"not_dead", http.StatusConflict, outbox.ErrNotDead},
	{"bad_state", http.StatusBadRequest, outbox.ErrBadState},
	{"read_only", http.StatusConflict, outbox.ErrReadOnly},
	{"closed", http.StatusServiceUnavailable, outbox.ErrClosed},
	{"corrupt", http.StatusInternalServerError, outbox.ErrCorrupt},
	{"refused", http.StatusForbidden, ErrRefused},
	{"bad_request", http.StatusBadRequest, ErrBadRequest},
	{"bad_driver", http.StatusBadRequest, outbox.ErrBadDriver},
}

// encodeError gives the code and HTTP status for err.
func encodeError(err error) (errorBody, int) {
	for _, c := range errorCodes {
		if errors.Is(err, c.err) {
			return errorBody{Code: c.code, Message: err.Error()}, c.status
		}
	}
	return errorBody{Code: "internal", Message: err.Error()}, http.StatusInternalServerError
}

// remoteError is an error the daemon returned: its message as the daemon
// wrote it, wrapping the sentinel its code names.
type remoteError struct {
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

// decodeError turns an errorBody back into an error.
func decodeError(b errorBody) error {
	for _, c := range errorCodes {
		if c.code == b.Code {
			return &remoteError{msg: b.Message, sentinel: c.err}
		}
	}
	return &remoteError{msg: b.Message}
}
