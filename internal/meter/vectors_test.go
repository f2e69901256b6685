package meter_test

import (
	"encoding/hex"
	"strings"
	"testing"

	"taxi-agent/internal/meter"
)

// Hex vectors. The worked frames are the protocol document's (docs/meter-protocol.md); the trip record (E8)
// is the public test vector of the SmallChi/JT905 C# library. Check bytes
// of the constructed vectors were computed independently of this package.
const (
	hexSignIn        = "55AA0038020000E13434303330303030303030310000000034323130383331393838303930363031315800423132333435202611281030000004D2909055AA"
	hexSignInAnswer  = "55AA0005000000E1907455AA"
	hexSignOutAnswer = "55AA0005000000E4907155AA"
	hexHeartbeatAns  = "55AA000E000000E900000000000000000000E755AA"
	hexStatusQuery   = "55AA000B02000000201111111111112955AA"
	hexTrip          = "55AA0046020000E8414133333333000000000000000000000000000000003432313038333139383830393036303131580023072619411941000001056700000000000000800000000C002255AA"
	hexSignOut       = "55AA005E020000E43434303330303030303030310000000034323130383331393838303930363031315800423132333435100020261128063020261128183001234500987600420130000456780012000003015000123456000987650250000004FC0555AA"
	hexSignOutMode   = "55AA005F020000F13434303330303030303030310000000034323130383331393838303930363031315800423132333435100020261128063020261128183001234500987600420130000456780012000003015000123456000987650250000004FC011055AA"
	hexHeartbeat     = "55AA0028020000E9033434303330303030303030310000000034323130383331393838303930363031315800A155AA"
	hexVendor        = "55AA0006020701A2BEEFF155AA"
	hexMarkerInData  = "55AA0028020000E90155AA0005000000E19074000000000000000000000000000000000000000000000000003D55AA"
	hexBadCheck      = "55AA0005000000E1907555AA"
	hexMissingEnd    = "55AA0005000000E1907455AB"
)

// unhex decodes hex with optional spaces.
func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		tb.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// outcome is one result of Decoder.Next: a frame (err nil) or dropped bytes.
type outcome struct {
	err     error
	raw     string // hex of Decoder.Last: the frame's wire bytes or the dropped bytes
	command uint16 // for frames
	data    string // for frames, hex
}

func frameOut(raw string, cmd uint16, data string) outcome {
	return outcome{raw: raw, command: cmd, data: data}
}

func dropOut(err error, raw string) outcome { return outcome{err: err, raw: raw} }

// decodeVectors is the decoder's table: every worked frame and every
// malformed case. Each input is decoded until ErrNeedMore; buffered is what
// must be left over.
var decodeVectors = []struct {
	name     string
	in       string
	want     []outcome
	buffered int
}{
	{"worked sign-in", hexSignIn, []outcome{frameOut(hexSignIn, meter.CmdSignIn, hexSignIn[16:len(hexSignIn)-6])}, 0},
	{"worked sign-in answer", hexSignInAnswer, []outcome{frameOut(hexSignInAnswer, meter.CmdSignIn, "90")}, 0},
	{"worked sign-out answer", hexSignOutAnswer, []outcome{frameOut(hexSignOutAnswer, meter.CmdSignOut, "90")}, 0},
	{"worked heartbeat answer", hexHeartbeatAns, []outcome{frameOut(hexHeartbeatAns, meter.CmdHeartbeat, "00000000000000000000")}, 0},
	{"worked status query", hexStatusQuery, []outcome{frameOut(hexStatusQuery, meter.CmdStatus, "20111111111111")}, 0},
	{"public trip record", hexTrip, []outcome{frameOut(hexTrip, meter.CmdTrip, hexTrip[16:len(hexTrip)-6])}, 0},
	{"sign-out", hexSignOut, []outcome{frameOut(hexSignOut, meter.CmdSignOut, hexSignOut[16:len(hexSignOut)-6])}, 0},
	{"sign-out resend with mode byte", hexSignOutMode, []outcome{frameOut(hexSignOutMode, meter.CmdSignOutResend, hexSignOutMode[16:len(hexSignOutMode)-6])}, 0},
	{"heartbeat", hexHeartbeat, []outcome{frameOut(hexHeartbeat, meter.CmdHeartbeat, hexHeartbeat[16:len(hexHeartbeat)-6])}, 0},
	{"vendor command", hexVendor, []outcome{frameOut(hexVendor, 0x01A2, "BEEF")}, 0},
	{"marker inside data uses the length", hexMarkerInData + hexSignInAnswer, []outcome{
		frameOut(hexMarkerInData, meter.CmdHeartbeat, hexMarkerInData[16:len(hexMarkerInData)-6]),
		frameOut(hexSignInAnswer, meter.CmdSignIn, "90"),
	}, 0},
	{"back to back", hexSignInAnswer + hexSignOutAnswer, []outcome{
		frameOut(hexSignInAnswer, meter.CmdSignIn, "90"),
		frameOut(hexSignOutAnswer, meter.CmdSignOut, "90"),
	}, 0},
	{"empty", "", nil, 0},
	{"noise only", "001122", []outcome{dropOut(meter.ErrNoise, "001122")}, 0},
	{"noise before frame", "0011 22" + hexSignInAnswer, []outcome{dropOut(meter.ErrNoise, "001122"), frameOut(hexSignInAnswer, meter.CmdSignIn, "90")}, 0},
	{"0x55 without 0xAA is noise", "5500 55" + hexSignInAnswer, []outcome{dropOut(meter.ErrNoise, "550055"), frameOut(hexSignInAnswer, meter.CmdSignIn, "90")}, 0},
	{"trailing bytes after frame", hexSignInAnswer + "00", []outcome{frameOut(hexSignInAnswer, meter.CmdSignIn, "90"), dropOut(meter.ErrNoise, "00")}, 0},
	{"lone 0x55 waits", "55", nil, 1},
	{"noise then lone 0x55 waits", "1255", []outcome{dropOut(meter.ErrNoise, "12")}, 1},
	{"start marker waits", "55AA", nil, 2},
	{"half a length waits", "55AA00", nil, 3},
	{"partial frame waits", hexSignIn[:40], nil, 20},
	{"frame without end marker waits", hexSignInAnswer[:len(hexSignInAnswer)-4], nil, 10},
	{"length 0", "55AA0000" + hexSignInAnswer, []outcome{dropOut(meter.ErrBadLength, "55AA0000"), frameOut(hexSignInAnswer, meter.CmdSignIn, "90")}, 0},
	{"length 3", "55AA000302" + hexSignInAnswer, []outcome{dropOut(meter.ErrBadLength, "55AA000302"), frameOut(hexSignInAnswer, meter.CmdSignIn, "90")}, 0},
	{"length 1025", "55AA0401" + hexSignInAnswer, []outcome{dropOut(meter.ErrBadLength, "55AA0401"), frameOut(hexSignInAnswer, meter.CmdSignIn, "90")}, 0},
	{"length 0xFFFF", "55AAFFFF", []outcome{dropOut(meter.ErrBadLength, "55AAFFFF")}, 0},
	// The end marker of a broken frame is itself a candidate start: its
	// "length" is 0x55AA, impossible, so it goes next.
	{"bad check", hexBadCheck + hexSignInAnswer, []outcome{
		dropOut(meter.ErrBadCheck, hexBadCheck[:len(hexBadCheck)-4]),
		dropOut(meter.ErrBadLength, "55AA"),
		frameOut(hexSignInAnswer, meter.CmdSignIn, "90"),
	}, 0},
	{"bad check alone keeps its end marker as a candidate", hexBadCheck, []outcome{dropOut(meter.ErrBadCheck, hexBadCheck[:len(hexBadCheck)-4])}, 2},
	{"missing end", hexMissingEnd + hexSignInAnswer, []outcome{
		dropOut(meter.ErrMissingEnd, hexMissingEnd),
		frameOut(hexSignInAnswer, meter.CmdSignIn, "90"),
	}, 0},
	{"truncated frame followed by a frame", hexSignIn[:60] + hexSignInAnswer + hexSignIn, []outcome{
		dropOut(meter.ErrMissingEnd, hexSignIn[:60]),
		frameOut(hexSignInAnswer, meter.CmdSignIn, "90"),
		frameOut(hexSignIn, meter.CmdSignIn, hexSignIn[16:len(hexSignIn)-6]),
	}, 0},
	{"max length", maxFrameHex(), []outcome{frameOut(maxFrameHex(), 0x00E7, strings.Repeat("00", meter.MaxData))}, 0},
}

// maxFrameHex is a frame with the largest allowed data: 1020 zero bytes.
// Its check is the XOR of the header only: 04 00 02 00 00 E7 = E1.
func maxFrameHex() string {
	return "55AA0400020000E7" + strings.Repeat("00", meter.MaxData) + "E155AA"
}

// decodeAll runs Next until ErrNeedMore.
func decodeAll(tb testing.TB, d *meter.Decoder) []outcome {
	tb.Helper()
	var got []outcome
	for range 10000 {
		f, err := d.Next()
		if err == meter.ErrNeedMore {
			return got
		}
		o := outcome{err: err, raw: strings.ToUpper(hex.EncodeToString(d.Last()))}
		if err == nil {
			o.command, o.data = f.Command, strings.ToUpper(hex.EncodeToString(f.Data))
		}
		got = append(got, o)
	}
	tb.Fatal("decoder did not stop")
	return nil
}

func TestDecodeVectors(t *testing.T) {
	for _, tc := range decodeVectors {
		t.Run(tc.name, func(t *testing.T) {
			var d meter.Decoder
			d.Write(unhex(t, tc.in))
			got := decodeAll(t, &d)
			checkOutcomes(t, got, tc.want)
			if d.Buffered() != tc.buffered {
				t.Errorf("buffered = %d, want %d", d.Buffered(), tc.buffered)
			}
		})
	}
}

// TestDecodeVectorsBytewise feeds every vector one byte at a time: the
// decoder must find the same frames, and drop the same bytes in total.
func TestDecodeVectorsBytewise(t *testing.T) {
	for _, tc := range decodeVectors {
		t.Run(tc.name, func(t *testing.T) {
			var d meter.Decoder
			var frames, wantFrames []outcome
			dropped, wantDropped := 0, 0
			for _, c := range unhex(t, tc.in) {
				d.Write([]byte{c})
				for _, o := range decodeAll(t, &d) {
					if o.err == nil {
						frames = append(frames, o)
					} else {
						dropped += len(o.raw) / 2
					}
				}
			}
			for _, o := range tc.want {
				if o.err == nil {
					wantFrames = append(wantFrames, o)
				} else {
					wantDropped += len(o.raw) / 2
				}
			}
			checkOutcomes(t, frames, wantFrames)
			if dropped != wantDropped || d.Buffered() != tc.buffered {
				t.Errorf("dropped %d, buffered %d; want %d, %d", dropped, d.Buffered(), wantDropped, tc.buffered)
			}
		})
	}
}

func checkOutcomes(t *testing.T, got, want []outcome) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d outcomes %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i := range want {
		g, w := got[i], want[i]
		w.raw, w.data = strings.ToUpper(strings.ReplaceAll(w.raw, " ", "")), strings.ToUpper(w.data)
		if g != w {
			t.Errorf("outcome %d:\n got  %+v\n want %+v", i, g, w)
		}
	}
}

// TestAppendFrameWorked encodes the worked frames (docs/meter-protocol.md).
func TestAppendFrameWorked(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    meter.Frame
		want string
	}{
		{"sign-in", meter.Frame{Device: 2, Command: meter.CmdSignIn, Data: unhex(t, hexSignIn[16:len(hexSignIn)-6])}, hexSignIn},
		{"sign-in answer", meter.Frame{Command: meter.CmdSignIn, Data: []byte{meter.ResultOK}}, hexSignInAnswer},
		{"sign-out answer", meter.Frame{Command: meter.CmdSignOut, Data: []byte{meter.ResultOK}}, hexSignOutAnswer},
		{"heartbeat answer", meter.Frame{Command: meter.CmdHeartbeat, Data: meter.HeartbeatAnswer{}.Append(nil)}, hexHeartbeatAns},
		{"status query", meter.Frame{Device: 2, Command: meter.CmdStatus, Data: unhex(t, "20111111111111")}, hexStatusQuery},
		{"vendor", meter.Frame{Device: 2, Vendor: 7, Command: 0x01A2, Data: unhex(t, "BEEF")}, hexVendor},
		{"max", meter.Frame{Device: 2, Command: 0x00E7, Data: make([]byte, meter.MaxData)}, maxFrameHex()},
	} {
		got := strings.ToUpper(hex.EncodeToString(meter.AppendFrame([]byte("prefix"), tc.f)[6:]))
		if got != tc.want {
			t.Errorf("%s:\n got  %s\n want %s", tc.name, got, tc.want)
		}
	}
}

func TestAppendFrameTooLongPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("AppendFrame accepted data longer than MaxData")
		}
	}()
	meter.AppendFrame(nil, meter.Frame{Data: make([]byte, meter.MaxData+1)})
}

func TestAbandon(t *testing.T) {
	var d meter.Decoder
	if err := d.Abandon(); err != nil {
		t.Fatalf("Abandon on empty decoder = %v", err)
	}
	// A truncated frame, then a complete one that does not fill the
	// truncated frame's declared length: only Abandon unblocks it.
	d.Write(unhex(t, hexSignIn[:30]+hexSignInAnswer))
	if got := decodeAll(t, &d); len(got) != 0 {
		t.Fatalf("decoded %+v before Abandon", got)
	}
	if err := d.Abandon(); err != meter.ErrTruncated {
		t.Fatalf("Abandon = %v, want ErrTruncated", err)
	}
	if got := strings.ToUpper(hex.EncodeToString(d.Last())); got != hexSignIn[:30] {
		t.Errorf("abandoned %s, want %s", got, hexSignIn[:30])
	}
	checkOutcomes(t, decodeAll(t, &d), []outcome{frameOut(hexSignInAnswer, meter.CmdSignIn, "90")})
}

func TestCommandName(t *testing.T) {
	for cmd, want := range map[uint16]string{
		meter.CmdStatus: "STATUS", meter.CmdSignInRequest: "SIGN_IN_REQUEST", meter.CmdSignIn: "SIGN_IN",
		meter.CmdSignOutRequest: "SIGN_OUT_REQUEST", meter.CmdSignOut: "SIGN_OUT", meter.CmdHeartbeat: "HEARTBEAT",
		meter.CmdSignOutResend: "SIGN_OUT_RESEND", meter.CmdTrip: "TRIP", meter.CmdTripResend: "TRIP_RESEND",
		0x00E7: "0x00E7", 0x01A2: "VENDOR_0x01A2",
	} {
		if got := meter.CommandName(cmd); got != want {
			t.Errorf("CommandName(%#04x) = %q, want %q", cmd, got, want)
		}
	}
}
