package main

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"taxi-agent/internal/meter"
)

// describe renders a frame's fields for the monitor. Driver licences are
// whole: the technician checks them against the driver's card.
func describe(dir string, f meter.Frame) string {
	if dir == "←" {
		return describeAnswer(f)
	}
	switch f.Command {
	case meter.CmdSignIn:
		s, err := meter.ParseSignIn(f.Data)
		if err != nil {
			return unreadable(err, f.Data)
		}
		return fmt.Sprintf("driver %s, company %s, plate %s, signed in %s, total trips %d, result 0x%02X",
			orDash(s.DriverLicence), orDash(s.CompanyLicence), orDash(s.Plate), bcdTime(s.Time), s.TotalTrips, s.Result)
	case meter.CmdSignOut, meter.CmdSignOutResend:
		s, err := meter.ParseSignOut(f.Data)
		if err != nil {
			return unreadable(err, f.Data)
		}
		d := fmt.Sprintf("driver %s, company %s, plate %s, shift %s – %s, %.1f km (%.1f km with passengers), %d trip(s), fare ¥%.1f, total trips %d",
			orDash(s.DriverLicence), orDash(s.CompanyLicence), orDash(s.Plate), bcdTime(s.ShiftStart), bcdTime(s.ShiftEnd),
			float64(s.Mileage)/10, float64(s.ServiceMileage)/10, s.Trips, float64(s.Fare)/10, s.TotalTrips)
		if s.HasMode && s.Mode == 1 {
			d += ", FORCED sign-out"
		}
		if s.FieldErr != nil {
			d += " (" + s.FieldErr.Error() + ")"
		}
		return d
	case meter.CmdHeartbeat:
		h, err := meter.ParseHeartbeat(f.Data)
		if err != nil {
			return unreadable(err, f.Data)
		}
		return fmt.Sprintf("state %s, driver %s, company %s", h.State, orDash(h.DriverLicence), orDash(h.CompanyLicence))
	case meter.CmdStatus:
		r, err := meter.ParseStatusReply(f.Data)
		if err != nil {
			return unreadable(err, f.Data)
		}
		return fmt.Sprintf("meter vendor %02X type %02X serial %d, software %d.%d, device state %d, work state 0x%02X, plate %s, driver %s, total trips %d",
			r.VendorCode, r.DeviceType, r.Serial, r.SoftwareMajor, r.SoftwareMinor, r.DeviceState, r.WorkState,
			orDash(r.Plate), orDash(r.DriverLicence), r.TotalTrips)
	}
	return fmt.Sprintf("dev %02X vendor %02X, %d byte(s) of data: %s", f.Device, f.Vendor, len(f.Data), hex.EncodeToString(f.Data))
}

// describeAnswer renders a frame the monitor sent.
func describeAnswer(f meter.Frame) string {
	switch f.Command {
	case meter.CmdHeartbeat:
		return "answer: no limits"
	case meter.CmdSignInRequest, meter.CmdSignOutRequest:
		a, err := meter.ParseRequestAnswer(f.Data)
		if err != nil {
			return unreadable(err, f.Data)
		}
		return fmt.Sprintf("answer: allowed (0x%02X) at %s", a.Result, bcdTime(a.SwipeTime))
	}
	return fmt.Sprintf("%d byte(s): %s", len(f.Data), hex.EncodeToString(f.Data))
}

// bcdTime shows a meter time, or its raw digits when they are not a time.
func bcdTime(b meter.BCDTime) string {
	t, err := b.Time()
	if err != nil {
		return "INVALID TIME " + b.String()
	}
	return t.In(meter.Zone).Format(time.DateOnly + " 15:04")
}

func unreadable(err error, data []byte) string {
	return fmt.Sprintf("UNREADABLE (%v): %s", strings.TrimPrefix(err.Error(), "meter: "), hex.EncodeToString(data))
}
