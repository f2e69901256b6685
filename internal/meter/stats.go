package meter

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// LinkStats is a snapshot of the link's health, for `agent status`.
type LinkStats struct {
	// Connected is set while the port is open.
	Connected      bool      `json:"connected"`
	ConnectedSince time.Time `json:"connected_since,omitzero"`
	// LastFrameAt is when the last valid frame arrived; zero if none yet.
	LastFrameAt time.Time `json:"last_frame_at,omitzero"`
	// Heartbeat is the last heartbeat, nil if none yet.
	Heartbeat *HeartbeatStatus `json:"heartbeat,omitempty"`
	// MeterStatus is the meter's last answer to a status query, nil if none.
	MeterStatus *MeterStatus `json:"meter_status,omitempty"`

	Frames  FrameCounts  `json:"frames"`  // valid frames received, by kind
	Answers AnswerCounts `json:"answers"` // frames the agent sent

	BadChecks    uint64 `json:"bad_checks"`    // frames dropped for their check byte
	BadLengths   uint64 `json:"bad_lengths"`   // start markers with an impossible length
	MissingEnds  uint64 `json:"missing_ends"`  // frames without their end marker
	Truncated    uint64 `json:"truncated"`     // partial frames abandoned after the frame timeout
	Resyncs      uint64 `json:"resyncs"`       // all of the above: each is one resynchronisation
	BytesDropped uint64 `json:"bytes_dropped"` // bytes of those frames and of noise
	BytesIn      uint64 `json:"bytes_in"`
	BytesOut     uint64 `json:"bytes_out"`
	// Echoes counts frames dropped because they were the agent's own
	// transmission read back (an echoing RS-485 line).
	Echoes uint64 `json:"echoes"`
	// BadBodies counts reports too short to read (sign-ins, sign-outs,
	// heartbeats, requests). A sign-out is answered 0xFF, a heartbeat
	// answered, but the same bytes only once per window;
	// BadBodiesUnanswered counts those left unanswered for that reason.
	BadBodies           uint64 `json:"bad_bodies"`
	BadBodiesUnanswered uint64 `json:"bad_bodies_unanswered"`
	// HandlerErrors counts events the agent could not store at once.
	HandlerErrors uint64 `json:"handler_errors"`
	// FailedSignIns counts sign-ins whose 操作结果 was not 0x90: the meter
	// did not sign the driver in; no punch is made.
	FailedSignIns    uint64        `json:"failed_sign_ins"`
	LastFailedSignIn *FailedSignIn `json:"last_failed_sign_in,omitempty"`

	Opens           uint64    `json:"opens"`   // successful opens of the port
	Reopens         uint64    `json:"reopens"` // opens after the first
	PortErrors      uint64    `json:"port_errors"`
	LastPortError   string    `json:"last_port_error,omitempty"`
	LastPortErrorAt time.Time `json:"last_port_error_at,omitzero"`
}

// Alive reports whether a valid frame arrived within the given window
// before now. A meter sends heartbeats every few seconds while powered.
func (s LinkStats) Alive(now time.Time, within time.Duration) bool {
	return s.Connected && !s.LastFrameAt.IsZero() && now.Sub(s.LastFrameAt) <= within
}

// FrameCounts counts valid frames received, by kind.
type FrameCounts struct {
	SignIn         uint64 `json:"sign_in"`
	SignOut        uint64 `json:"sign_out"`
	SignOutResend  uint64 `json:"sign_out_resend"`
	Heartbeat      uint64 `json:"heartbeat"`
	SignInRequest  uint64 `json:"sign_in_request"`
	SignOutRequest uint64 `json:"sign_out_request"`
	StatusReply    uint64 `json:"status_reply"`
	// RequestNotWanted counts requests whose flag was not 0x90 (not answered).
	RequestNotWanted uint64 `json:"request_not_wanted"`
	Unknown          uint64 `json:"unknown"` // trips, vendor commands and anything else
}

// AnswerCounts counts frames the agent sent.
type AnswerCounts struct {
	OK            uint64 `json:"ok"`             // sign-in/out answered 0x90
	Failed        uint64 `json:"failed"`         // sign-in/out answered 0xFF
	Heartbeat     uint64 `json:"heartbeat"`      // heartbeat answers
	Request       uint64 `json:"request"`        // sign-in/out request answers
	Refused       uint64 `json:"refused"`        // of those, refused (0xFF): no driver set
	StatusQueries uint64 `json:"status_queries"` // status queries sent
}

// HeartbeatStatus is the last heartbeat of the meter, bits decoded.
type HeartbeatStatus struct {
	At             time.Time  `json:"at"`
	State          MeterState `json:"state"`
	Hired          bool       `json:"hired"`
	SignedIn       bool       `json:"signed_in"`
	ForcedOn       bool       `json:"forced_on"`
	ForcedOff      bool       `json:"forced_off"`
	CompanyLicence string     `json:"company_licence,omitempty"`
	DriverLicence  string     `json:"driver_license,omitempty"`
}

// FailedSignIn is a sign-in report whose 操作结果 was not 0x90.
type FailedSignIn struct {
	At             time.Time `json:"at"`
	Result         byte      `json:"result"`
	DriverLicence  string    `json:"driver_license,omitempty"`
	CompanyLicence string    `json:"company_licence,omitempty"`
	MeterTime      string    `json:"meter_time"` // YYYYMMDDhhmm as sent
}

// MeterStatus is the meter's last answer to a status query.
type MeterStatus struct {
	At    time.Time   `json:"at"`
	Reply StatusReply `json:"reply"`
}

// Direction says which way a frame went.
type Direction int8

// Directions of a FrameEvent.
const (
	DirIn  Direction = 1 // from the meter
	DirOut Direction = 2 // to the meter
)

func (d Direction) String() string {
	if d == DirOut {
		return "out"
	}
	return "in"
}

// FrameEvent is what the link saw on the line, for `agent meter monitor`:
// a frame in either direction, or bytes it dropped.
type FrameEvent struct {
	Time  time.Time
	Dir   Direction
	Frame Frame // the decoded frame; zero when Err is set
	// Raw is the frame's wire bytes, or the bytes dropped. Like
	// Frame.Data it is valid only during the Observe call.
	Raw []byte
	// Err is nil for a frame; for dropped bytes it says why: ErrNoise,
	// ErrBadLength, ErrMissingEnd, ErrBadCheck or ErrTruncated.
	Err error
	// Echo is set on a frame dropped as the agent's own transmission
	// read back.
	Echo bool
}

// String renders the event on one line, e.g.
// "10:30:00.123 in  SIGN_IN dev=02 vendor=00 len=52 55aa0038…".
func (e FrameEvent) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-3s ", e.Time.In(Zone).Format("15:04:05.000"), e.Dir)
	switch {
	case e.Err != nil:
		fmt.Fprintf(&b, "DROPPED %d bytes (%v)", len(e.Raw), e.Err)
	case e.Echo:
		b.WriteString("ECHO of our own ")
		b.WriteString(e.Frame.String())
	default:
		b.WriteString(e.Frame.String())
	}
	b.WriteByte(' ')
	b.WriteString(hex.EncodeToString(e.Raw))
	return b.String()
}
