package metersim

import (
	"time"

	"taxi-agent/internal/meter"
)

// Defaults of a Shift's fields.
const (
	DefaultCompany = "440300000001" // 经营许可证号 of the protocol document's (docs/meter-protocol.md) worked frame
	DefaultPlate   = "B12345"
	shiftLength    = 8 * time.Hour
)

// Shift is what the simulated meter reports about one driver's shift. Zero
// fields get realistic defaults; the driver licence is sent as given, so an
// empty one simulates a meter that leaves it out of the sign-out.
type Shift struct {
	Company string    // 经营许可证号; "" means DefaultCompany
	Driver  string    // 从业资格证号
	Plate   string    // 6 ASCII characters; "" means DefaultPlate
	Trips   uint32    // 总营运次数 reported with the event
	At      time.Time // sign-in time (开机时间)
	End     time.Time // sign-out time (当班关机时间); zero means At + 8h

	// Result is the 操作结果 the meter reports with the sign-in; 0 means
	// 0x90 (signed in). Anything else is a sign-in the meter refused.
	Result byte

	ShiftTrips uint32 // 车次 of the shift
	Mileage    uint32 // 当班里程, 0.1 km
	Fare       uint32 // 总计金额, 0.1 yuan
}

func (s Shift) company() string {
	if s.Company == "" {
		return DefaultCompany
	}
	return s.Company
}

func (s Shift) plate() string {
	if s.Plate == "" {
		return DefaultPlate
	}
	return s.Plate
}

// EndTime is the sign-out time the meter reports.
func (s Shift) EndTime() time.Time {
	if s.End.IsZero() {
		return s.At.Add(shiftLength)
	}
	return s.End
}

// SignInBody is the 0x00E1 body of the shift.
func (s Shift) SignInBody() meter.SignIn {
	return meter.SignIn{
		CompanyLicence: s.company(), DriverLicence: s.Driver, Plate: s.plate(),
		Time: meter.BCDTimeOf(s.At), TotalTrips: s.Trips, Result: s.result(),
	}
}

// SignOutBody is the 0x00E4/0x00F1 body of the shift, with plausible
// totals derived from Mileage, Fare and ShiftTrips.
func (s Shift) SignOutBody() meter.SignOut {
	return meter.SignOut{
		CompanyLicence: s.company(), DriverLicence: s.Driver, Plate: s.plate(),
		KValue: 1000, ShiftStart: meter.BCDTimeOf(s.At), ShiftEnd: meter.BCDTimeOf(s.EndTime()),
		Mileage: s.Mileage, ServiceMileage: s.Mileage * 7 / 10, Trips: s.ShiftTrips,
		WaitingTime: 1500, Fare: s.Fare, CardFare: s.Fare / 4, CardTrips: s.ShiftTrips / 4,
		EmptyMileage: 35, TotalMileage: 1234567 + s.Mileage, TotalService: 864197 + s.Mileage*7/10,
		UnitPrice: 250, TotalTrips: s.Trips,
	}
}

// SignInFrame is the shift's sign-in as the meter sends it.
func (s Shift) SignInFrame() meter.Frame {
	return meter.Frame{Device: meter.DeviceMeter, Command: meter.CmdSignIn, Data: s.SignInBody().Append(nil)}
}

// SignOutFrame is the shift's sign-out as the meter sends it: 0x00E4, or
// 0x00F1 when resend is set.
func (s Shift) SignOutFrame(resend bool) meter.Frame {
	cmd := meter.CmdSignOut
	if resend {
		cmd = meter.CmdSignOutResend
	}
	return meter.Frame{Device: meter.DeviceMeter, Command: cmd, Data: s.SignOutBody().Append(nil)}
}

// HeartbeatFrame is a 0x00E9 heartbeat of the meter in the given state.
func (s Shift) HeartbeatFrame(state meter.MeterState) meter.Frame {
	h := meter.Heartbeat{State: state, CompanyLicence: s.company(), DriverLicence: s.Driver}
	return meter.Frame{Device: meter.DeviceMeter, Command: meter.CmdHeartbeat, Data: h.Append(nil)}
}

// requestFrame is a 0x00E0/0x00E3 request: the 1-byte 开机标识 /
// 关机标识, 0x90.
func (s Shift) requestFrame(cmd uint16) meter.Frame {
	return meter.Frame{Device: meter.DeviceMeter, Command: cmd, Data: []byte{meter.RequestWanted}}
}

func (s Shift) result() byte {
	if s.Result == 0 {
		return meter.ResultOK
	}
	return s.Result
}

// withIdentity is the shift as the meter signs it in given the terminal's
// answer: the answer's identity where it carries one.
func (s Shift) withIdentity(id meter.Identity) Shift {
	if id.DriverLicence == "" {
		return s
	}
	s.Driver = id.DriverLicence
	if id.CompanyLicence != "" {
		s.Company = id.CompanyLicence
	}
	if id.Plate != "" {
		s.Plate = id.Plate
	}
	return s
}

func (s Shift) identity() meter.Identity {
	return meter.Identity{CompanyLicence: s.company(), DriverLicence: s.Driver, Plate: s.plate()}
}
