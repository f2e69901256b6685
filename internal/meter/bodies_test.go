package meter_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"taxi-agent/internal/meter"
	"taxi-agent/internal/punch"
)

// dataOf returns the data of a hex frame vector.
func dataOf(tb testing.TB, frameHex string) []byte {
	tb.Helper()
	b := unhex(tb, frameHex)
	return b[8 : len(b)-3]
}

func TestParseSignInWorked(t *testing.T) {
	data := dataOf(t, hexSignIn)
	s, err := meter.ParseSignIn(data)
	if err != nil {
		t.Fatal(err)
	}
	want := meter.SignIn{
		CompanyLicence: "440300000001", DriverLicence: "42108319880906011X", Plate: "B12345",
		Time: meter.BCDTime{0x20, 0x26, 0x11, 0x28, 0x10, 0x30}, TotalTrips: 1234, Result: meter.ResultOK,
	}
	if s != want {
		t.Errorf("got %+v\nwant %+v", s, want)
	}
	tm, err := s.Time.Time()
	if err != nil || !tm.Equal(time.Date(2026, 11, 28, 2, 30, 0, 0, time.UTC)) {
		t.Errorf("time = %v, %v; want 2026-11-28 10:30 UTC+8", tm, err)
	}
	if _, off := tm.Zone(); off != 8*3600 {
		t.Errorf("zone offset %d, want UTC+8", off)
	}
	if got := s.Append(nil); !bytes.Equal(got, data) {
		t.Errorf("re-encoded %X\nwant %X", got, data)
	}
	// A longer body is accepted, a shorter one is not.
	if _, err := meter.ParseSignIn(append(bytes.Clone(data), 0xEE)); err != nil {
		t.Errorf("53-byte body: %v", err)
	}
	if _, err := meter.ParseSignIn(data[:51]); !errors.Is(err, meter.ErrShortBody) {
		t.Errorf("51-byte body: %v, want ErrShortBody", err)
	}
}

func TestParseSignOut(t *testing.T) {
	data := dataOf(t, hexSignOut)
	s, err := meter.ParseSignOut(data)
	if err != nil {
		t.Fatal(err)
	}
	want := meter.SignOut{
		CompanyLicence: "440300000001", DriverLicence: "42108319880906011X", Plate: "B12345",
		KValue:     1000,
		ShiftStart: meter.BCDTime{0x20, 0x26, 0x11, 0x28, 0x06, 0x30},
		ShiftEnd:   meter.BCDTime{0x20, 0x26, 0x11, 0x28, 0x18, 0x30},
		Mileage:    12345, ServiceMileage: 9876, Trips: 42, WaitingTime: 13000, Fare: 45678, CardFare: 1200,
		CardTrips: 3, EmptyMileage: 150, TotalMileage: 123456, TotalService: 98765, UnitPrice: 250, TotalTrips: 1276,
	}
	if s != want {
		t.Errorf("got  %+v\nwant %+v", s, want)
	}
	if got := s.Append(nil); !bytes.Equal(got, data) {
		t.Errorf("re-encoded %X\nwant %X", got, data)
	}
	if _, err := meter.ParseSignOut(data[:89]); !errors.Is(err, meter.ErrShortBody) {
		t.Errorf("89-byte body: %v, want ErrShortBody", err)
	}

	withMode := dataOf(t, hexSignOutMode)
	m, err := meter.ParseSignOut(withMode)
	if err != nil || !m.HasMode || m.Mode != 1 {
		t.Fatalf("91-byte body: %+v, %v; want mode 1", m, err)
	}
	if got := m.Append(nil); !bytes.Equal(got, withMode) {
		t.Errorf("re-encoded %X\nwant %X", got, withMode)
	}

	// A garbled quantity is reported but does not lose the sign-out.
	bad := bytes.Clone(data)
	bad[55] = 0xAB // 当班里程
	g, err := meter.ParseSignOut(bad)
	if err != nil || !errors.Is(g.FieldErr, meter.ErrBadBCD) || g.DriverLicence != want.DriverLicence || g.TotalTrips != 1276 {
		t.Errorf("garbled mileage: %+v, %v", g, err)
	}
}

func TestBCDTime(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    meter.BCDTime
		want time.Time
		err  error
	}{
		{"worked", meter.BCDTime{0x20, 0x26, 0x11, 0x28, 0x10, 0x30}, time.Date(2026, 11, 28, 10, 30, 0, 0, meter.Zone), nil},
		{"leap day", meter.BCDTime{0x20, 0x28, 0x02, 0x29, 0x23, 0x59}, time.Date(2028, 2, 29, 23, 59, 0, 0, meter.Zone), nil},
		{"29 Feb of a common year", meter.BCDTime{0x20, 0x26, 0x02, 0x29, 0x00, 0x00}, time.Time{}, meter.ErrBadTime},
		{"31 April", meter.BCDTime{0x20, 0x26, 0x04, 0x31, 0x00, 0x00}, time.Time{}, meter.ErrBadTime},
		{"month 13", meter.BCDTime{0x20, 0x26, 0x13, 0x01, 0x00, 0x00}, time.Time{}, meter.ErrBadTime},
		{"hour 24", meter.BCDTime{0x20, 0x26, 0x11, 0x28, 0x24, 0x00}, time.Time{}, meter.ErrBadTime},
		{"minute 60", meter.BCDTime{0x20, 0x26, 0x11, 0x28, 0x10, 0x60}, time.Time{}, meter.ErrBadTime},
		{"all zero", meter.BCDTime{}, time.Time{}, meter.ErrBadTime},
		{"nibble A", meter.BCDTime{0x20, 0x26, 0x11, 0x28, 0x1A, 0x30}, time.Time{}, meter.ErrBadBCD},
		{"all FF", meter.BCDTime{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, time.Time{}, meter.ErrBadBCD},
	} {
		got, err := tc.b.Time()
		if !errors.Is(err, tc.err) || !got.Equal(tc.want) {
			t.Errorf("%s: %v, %v; want %v, %v", tc.name, got, err, tc.want, tc.err)
		}
		if tc.err == nil && meter.BCDTimeOf(got) != tc.b {
			t.Errorf("%s: BCDTimeOf round trip = %v", tc.name, meter.BCDTimeOf(got))
		}
	}
	// Encoding converts to UTC+8 whatever the input zone.
	utc := time.Date(2026, 11, 28, 2, 30, 59, 0, time.UTC)
	if got := meter.BCDTimeOf(utc).String(); got != "202611281030" {
		t.Errorf("BCDTimeOf(UTC) = %s, want 202611281030", got)
	}
}

func TestHeartbeat(t *testing.T) {
	data := dataOf(t, hexHeartbeat)
	h, err := meter.ParseHeartbeat(data)
	if err != nil {
		t.Fatal(err)
	}
	if h.State != meter.StateHired|meter.StateSignedIn || !h.State.Hired() || !h.State.SignedIn() || h.State.ForcedOn() ||
		h.State.ForcedOff() || h.CompanyLicence != "440300000001" || h.DriverLicence != "42108319880906011X" {
		t.Errorf("got %+v", h)
	}
	if h.State.String() != "hired|signed_in" || meter.MeterState(0).String() != "idle" ||
		meter.MeterState(0x1C).String() != "forced_on|forced_off|0x10" {
		t.Errorf("state strings: %q %q %q", h.State, meter.MeterState(0), meter.MeterState(0x1C))
	}
	if !bytes.Equal(h.Append(nil), data) {
		t.Errorf("re-encoded %X", h.Append(nil))
	}
	if _, err := meter.ParseHeartbeat(data[:35]); !errors.Is(err, meter.ErrShortBody) {
		t.Errorf("35-byte heartbeat: %v", err)
	}
}

func TestReplyBodies(t *testing.T) {
	ans := meter.HeartbeatAnswer{ISUStatus: 0x0102, TimeLimit: [5]byte{0x20, 0x26, 0x12, 0x31, 0x23}, CountLimit: 9, CountLimitWidth: 1, Reserved: 0xBEEF}
	if got, err := meter.ParseHeartbeatAnswer(ans.Append(nil)); err != nil || got != ans || len(ans.Append(nil)) != meter.HeartbeatAnswerSize {
		t.Errorf("heartbeat answer round trip: %+v, %v", got, err)
	}
	wide := meter.HeartbeatAnswer{ISUStatus: 0x0102, CountLimit: 0x0309, CountLimitWidth: 2, Reserved: 0xBEEF}
	if got, err := meter.ParseHeartbeatAnswer(wide.Append(nil)); err != nil || got != wide || len(wide.Append(nil)) != meter.HeartbeatAnswerSize+1 {
		t.Errorf("2-byte count limit heartbeat answer round trip: %+v, %v", got, err)
	}
	req := meter.RequestAnswer{
		CompanyLicence: "440300000001", Plate: "B12345", SwipeTime: meter.BCDTime{0x20, 0x26, 0x11, 0x28, 0x10, 0x30},
		TimeLimit: [5]byte{1, 2, 3, 4, 5}, CountLimit: [2]byte{6, 7}, Result: meter.ResultOK,
	}
	b := req.Append(nil)
	if got, err := meter.ParseRequestAnswer(b); err != nil || got != req || len(b) != meter.RequestAnswerSize {
		t.Errorf("request answer round trip: %+v, %v (%d bytes)", got, err, len(b))
	}
	if b[meter.RequestAnswerSize-1] != meter.ResultOK || !bytes.Equal(b[16:35], make([]byte, 19)) {
		t.Errorf("request answer layout: %X", b)
	}
	st := meter.StatusReply{VendorCode: 0x12, DeviceType: 0x02, Serial: 123456, HardwareVer: 0x10, SoftwareMajor: 0x02,
		SoftwareMinor: 0x05, WorkState: 0x01, Plate: "B12345", CompanyLicence: "440300000001", DriverLicence: "42108319880906011X", TotalTrips: 1234}
	if got, err := meter.ParseStatusReply(st.Append(nil)); err != nil || got != st || len(st.Append(nil)) != meter.StatusReplySize {
		t.Errorf("status reply round trip: %+v, %v", got, err)
	}
	q, err := meter.ParseStatusQuery(dataOf(t, hexStatusQuery))
	if err != nil || !q.Time.Equal(time.Date(2011, 11, 11, 11, 11, 11, 0, meter.Zone)) {
		t.Errorf("status query: %v, %v", q.Time, err)
	}
	if got := q.Append(nil); !bytes.Equal(got, dataOf(t, hexStatusQuery)) {
		t.Errorf("status query re-encoded %X", got)
	}
	for name, parse := range map[string]func([]byte) error{
		"heartbeat answer": func(b []byte) error { _, err := meter.ParseHeartbeatAnswer(b); return err },
		"request answer":   func(b []byte) error { _, err := meter.ParseRequestAnswer(b); return err },
		"status reply":     func(b []byte) error { _, err := meter.ParseStatusReply(b); return err },
		"status query":     func(b []byte) error { _, err := meter.ParseStatusQuery(b); return err },
		"result":           func(b []byte) error { _, err := meter.ParseResult(b); return err },
	} {
		if err := parse(nil); !errors.Is(err, meter.ErrShortBody) {
			t.Errorf("%s of no bytes: %v, want ErrShortBody", name, err)
		}
	}
}

func TestEventFromFrame(t *testing.T) {
	in := meter.Frame{Device: 2, Command: meter.CmdSignIn, Data: dataOf(t, hexSignIn)}
	ev, err := meter.EventFromFrame(in)
	if err != nil {
		t.Fatal(err)
	}
	if ev.SignOut() || ev.Type() != punch.SignIn || ev.CompanyLicence != "440300000001" || ev.Plate != "B12345" ||
		ev.TotalTrips != 1234 || ev.MeterTimeErr != nil || !ev.MeterTime.Equal(time.Date(2026, 11, 28, 10, 30, 0, 0, meter.Zone)) {
		t.Errorf("sign-in event %+v", ev)
	}
	if got, want := ev.Identity(), "SIGN_IN|42108319880906011X|202611281030|1234"; got != want {
		t.Errorf("identity %q, want %q", got, want)
	}

	out, err := meter.EventFromFrame(meter.Frame{Command: meter.CmdSignOut, Data: dataOf(t, hexSignOut)})
	if err != nil || !out.SignOut() || out.Forced || out.Identity() != "SIGN_OUT|42108319880906011X|202611281830|1276" {
		t.Errorf("sign-out event %+v, %v", out, err)
	}
	resend, err := meter.EventFromFrame(meter.Frame{Command: meter.CmdSignOutResend, Data: dataOf(t, hexSignOutMode)})
	if err != nil || !resend.SignOut() || !resend.Forced || resend.Identity() != out.Identity() {
		t.Errorf("F1 re-send %+v, %v: its identity must be the E4's %q", resend, err, out.Identity())
	}

	// An invalid meter time still yields an event, with a stable identity.
	bad := bytes.Clone(in.Data)
	copy(bad[41:47], []byte{0x20, 0x26, 0x13, 0x45, 0xFF, 0x00})
	bev, err := meter.EventFromFrame(meter.Frame{Command: meter.CmdSignIn, Data: bad})
	if err != nil || !bev.MeterTime.IsZero() || !errors.Is(bev.MeterTimeErr, meter.ErrBadBCD) ||
		bev.Identity() != "SIGN_IN|42108319880906011X|20261345ff00|1234" {
		t.Errorf("invalid time: %+v, %v", bev, err)
	}

	if _, err := meter.EventFromFrame(meter.Frame{Command: meter.CmdHeartbeat, Data: dataOf(t, hexHeartbeat)}); !errors.Is(err, meter.ErrNotEvent) {
		t.Errorf("heartbeat as event: %v", err)
	}
	if _, err := meter.EventFromFrame(meter.Frame{Command: meter.CmdSignOut, Data: dataOf(t, hexSignIn)}); !errors.Is(err, meter.ErrShortBody) {
		t.Errorf("sign-out with a 52-byte body: %v", err)
	}
}
