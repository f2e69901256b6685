package meter

import (
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"taxi-agent/internal/punch"
	"taxi-agent/internal/redact"
)

// Event is a sign-in or sign-out the meter reported, handed to the agent.
type Event struct {
	Command        uint16    // CmdSignIn, CmdSignOut or CmdSignOutResend
	CompanyLicence string    // 经营许可证号, trimmed
	DriverLicence  string    // 从业资格证号, trimmed (may be empty on some sign-outs)
	Plate          string    // the meter's 6 ASCII plate characters, trimmed
	MeterTime      time.Time // sign-in time (E1) or sign-out time (E4/F1) in UTC+8; zero if the BCD was invalid
	MeterTimeErr   error     // why MeterTime is zero, if it is
	MeterTimeBCD   BCDTime   // the meter time as sent
	TotalTrips     uint32    // 总营运次数
	// ReceivedAt is the link's clock when the frame's last byte was read.
	ReceivedAt time.Time
	// Result is the 操作结果 of a sign-in: 0x90 when the meter signed the
	// driver in. The link hands over only sign-ins with 0x90; 0 on
	// sign-outs.
	Result byte
	// Forced is set on a sign-out the meter marked as forced (签退方式 1),
	// on meters that send that byte.
	Forced bool
}

// SignOut reports whether the event is a sign-out (0x00E4 or 0x00F1).
func (e Event) SignOut() bool { return e.Command == CmdSignOut || e.Command == CmdSignOutResend }

// Type is punch.SignIn or punch.SignOut.
func (e Event) Type() string {
	if e.SignOut() {
		return punch.SignOut
	}
	return punch.SignIn
}

// Identity is the de-duplication key of the event (docs/meter-protocol.md): type,
// driver licence, the meter time's raw BCD as hex and total trips, e.g.
// "SIGN_IN|42108319880906011X|202611281030|1234". A 0x00F1 re-send has the
// identity of the 0x00E4 it repeats.
func (e Event) Identity() string {
	return e.Type() + "|" + e.DriverLicence + "|" + e.MeterTimeBCD.String() + "|" + strconv.FormatUint(uint64(e.TotalTrips), 10)
}

// LogValue logs the event with the driver licence masked.
func (e Event) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("type", e.Type()),
		slog.String("command", CommandName(e.Command)),
		slog.String("driver_license", redact.Licence(e.DriverLicence)),
		slog.String("company_licence", e.CompanyLicence),
		slog.String("plate", e.Plate),
		slog.String("meter_time", e.MeterTimeBCD.String()),
		slog.Uint64("total_trips", uint64(e.TotalTrips)),
	}
	if e.MeterTimeErr != nil {
		attrs = append(attrs, slog.String("meter_time_err", e.MeterTimeErr.Error()))
	}
	return slog.GroupValue(attrs...)
}

// EventFromFrame turns a sign-in (0x00E1) or sign-out (0x00E4, 0x00F1)
// frame into an Event. It fails with ErrNotEvent for other commands and
// ErrShortBody for a body too short to hold the fields. ReceivedAt is left
// for the caller.
func EventFromFrame(f Frame) (Event, error) {
	ev := Event{Command: f.Command}
	switch f.Command {
	case CmdSignIn:
		s, err := ParseSignIn(f.Data)
		if err != nil {
			return Event{}, err
		}
		ev.CompanyLicence, ev.DriverLicence, ev.Plate = s.CompanyLicence, s.DriverLicence, s.Plate
		ev.MeterTimeBCD, ev.TotalTrips, ev.Result = s.Time, s.TotalTrips, s.Result
	case CmdSignOut, CmdSignOutResend:
		s, err := ParseSignOut(f.Data)
		if err != nil {
			return Event{}, err
		}
		ev.CompanyLicence, ev.DriverLicence, ev.Plate = s.CompanyLicence, s.DriverLicence, s.Plate
		ev.MeterTimeBCD, ev.TotalTrips = s.ShiftEnd, s.TotalTrips
		ev.Forced = s.HasMode && s.Mode == 1
	default:
		return Event{}, fmt.Errorf("make event from %s: %w", CommandName(f.Command), ErrNotEvent)
	}
	ev.MeterTime, ev.MeterTimeErr = ev.MeterTimeBCD.Time()
	return ev, nil
}
