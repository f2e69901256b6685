package meter

import (
	"log/slog"

	"taxi-agent/internal/redact"
)

// The log forms of the meter's records: every one that holds a driver
// licence logs it masked to its last four characters (redact.Licence), so
// that no call site can leak one. Company licences and plates are not
// personal data and are logged whole.

// licenceAttrs are the identity fields as every meter record logs them.
func licenceAttrs(company, driver, plate string) []slog.Attr {
	return []slog.Attr{
		slog.String("company_licence", company),
		slog.String("driver_license", redact.Licence(driver)),
		slog.String("plate", plate),
	}
}

// LogValue logs the sign-in with the driver licence masked.
func (s SignIn) LogValue() slog.Value {
	return slog.GroupValue(append(licenceAttrs(s.CompanyLicence, s.DriverLicence, s.Plate),
		slog.String("time", s.Time.String()), slog.Uint64("total_trips", uint64(s.TotalTrips)),
		slog.Int("result", int(s.Result)))...)
}

// LogValue logs the sign-out with the driver licence masked.
func (s SignOut) LogValue() slog.Value {
	a := append(licenceAttrs(s.CompanyLicence, s.DriverLicence, s.Plate),
		slog.String("shift_start", s.ShiftStart.String()), slog.String("shift_end", s.ShiftEnd.String()),
		slog.Uint64("mileage", uint64(s.Mileage)), slog.Uint64("service_mileage", uint64(s.ServiceMileage)),
		slog.Uint64("trips", uint64(s.Trips)), slog.Uint64("fare", uint64(s.Fare)),
		slog.Uint64("total_trips", uint64(s.TotalTrips)))
	if s.HasMode {
		a = append(a, slog.Int("mode", int(s.Mode)))
	}
	if s.FieldErr != nil {
		a = append(a, slog.String("field_err", s.FieldErr.Error()))
	}
	return slog.GroupValue(a...)
}

// LogValue logs the heartbeat with the driver licence masked.
func (h Heartbeat) LogValue() slog.Value {
	return slog.GroupValue(slog.String("state", h.State.String()),
		slog.String("company_licence", h.CompanyLicence), slog.String("driver_license", redact.Licence(h.DriverLicence)))
}

// LogValue logs the heartbeat status with the driver licence masked.
func (h HeartbeatStatus) LogValue() slog.Value {
	return slog.GroupValue(slog.Time("at", h.At), slog.String("state", h.State.String()),
		slog.Bool("hired", h.Hired), slog.Bool("signed_in", h.SignedIn),
		slog.Bool("forced_on", h.ForcedOn), slog.Bool("forced_off", h.ForcedOff),
		slog.String("company_licence", h.CompanyLicence), slog.String("driver_license", redact.Licence(h.DriverLicence)))
}

// LogValue logs the identity with the driver licence masked.
func (id Identity) LogValue() slog.Value {
	return slog.GroupValue(licenceAttrs(id.CompanyLicence, id.DriverLicence, id.Plate)...)
}

// LogValue logs the answer with the driver licence masked.
func (a RequestAnswer) LogValue() slog.Value {
	return slog.GroupValue(append(licenceAttrs(a.CompanyLicence, a.DriverLicence, a.Plate),
		slog.String("swipe_time", a.SwipeTime.String()), slog.Int("result", int(a.Result)))...)
}

// LogValue logs the status reply with the driver licence masked.
func (r StatusReply) LogValue() slog.Value {
	return slog.GroupValue(append(licenceAttrs(r.CompanyLicence, r.DriverLicence, r.Plate),
		slog.Int("vendor_code", int(r.VendorCode)), slog.Int("device_type", int(r.DeviceType)),
		slog.Uint64("serial", uint64(r.Serial)), slog.Int("device_state", int(r.DeviceState)),
		slog.Int("work_state", int(r.WorkState)), slog.Uint64("total_trips", uint64(r.TotalTrips)))...)
}

// LogValue logs the status with the driver licence masked.
func (m MeterStatus) LogValue() slog.Value {
	return slog.GroupValue(slog.Time("at", m.At), slog.Any("reply", m.Reply))
}

// LogValue logs the refused sign-in with the driver licence masked.
func (f FailedSignIn) LogValue() slog.Value {
	return slog.GroupValue(slog.Time("at", f.At), slog.Int("result", int(f.Result)),
		slog.String("company_licence", f.CompanyLicence), slog.String("driver_license", redact.Licence(f.DriverLicence)),
		slog.String("meter_time", f.MeterTime))
}

// LogValue logs the link's counters, and its last heartbeat, status and
// refused sign-in with their driver licences masked.
func (s LinkStats) LogValue() slog.Value {
	a := []slog.Attr{
		slog.Bool("connected", s.Connected), slog.Time("connected_since", s.ConnectedSince),
		slog.Time("last_frame_at", s.LastFrameAt),
		slog.Any("frames", s.Frames), slog.Any("answers", s.Answers),
		slog.Uint64("resyncs", s.Resyncs), slog.Uint64("bytes_dropped", s.BytesDropped),
		slog.Uint64("bytes_in", s.BytesIn), slog.Uint64("bytes_out", s.BytesOut),
		slog.Uint64("bad_bodies", s.BadBodies), slog.Uint64("handler_errors", s.HandlerErrors),
		slog.Uint64("failed_sign_ins", s.FailedSignIns),
		slog.Uint64("opens", s.Opens), slog.Uint64("port_errors", s.PortErrors),
		slog.String("last_port_error", s.LastPortError),
	}
	if s.Heartbeat != nil {
		a = append(a, slog.Any("heartbeat", *s.Heartbeat))
	}
	if s.MeterStatus != nil {
		a = append(a, slog.Any("meter_status", *s.MeterStatus))
	}
	if s.LastFailedSignIn != nil {
		a = append(a, slog.Any("last_failed_sign_in", *s.LastFailedSignIn))
	}
	return slog.GroupValue(a...)
}
