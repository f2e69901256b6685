package meter_test

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"taxi-agent/internal/meter"
	"taxi-agent/internal/metersim"
	"taxi-agent/internal/punch"
	"taxi-agent/internal/testsupport"
)

// Hex vectors of the shift handshake (docs/meter-protocol.md). Check bytes
// were computed independently of this package.
const (
	hexSignInFailed     = "55AA0038020000E13434303330303030303030310000000034323130383331393838303930363031315800423132333435202611281030000004D2FFFF55AA"
	hexVendorSignIn     = "55AA00380200F0E13434303330303030303030310000000034323130383331393838303930363031315800423132333435202611281030000004D2906055AA"
	hexSignInRequest    = "55AA0005020000E0907755AA"
	hexRequestFlagZero  = "55AA0005020000E000E755AA"
	hexRequestAnswerID  = "55AA003D000000E03434303330303030303030310000000034323130383331393838303930363031315800423132333435202611281030000000000000000000904055AA"
	hexRequestRefused   = "55AA003D000000E00000000000000000000000000000000000000000000000000000000000000000000000000000000000202611281030000000000000000000FF3D55AA"
	hexRequestAnsMeter  = "55AA003D000000E00000000000000000000000000000000000000000000000000000000000000000000000000000000000202611281030000000000000000000905255AA"
	hexVendorSignOutAns = "55AA00050000F0E4908155AA"
	hexSignOutRefusal   = "55AA0005000000E4FF1E55AA"
	hexHeartbeatAnsWide = "55AA000F000000E90000000000000000000000E655AA"
)

var answerNow = time.Date(2026, 11, 28, 2, 30, 0, 0, time.UTC) // 10:30 in UTC+8

// converse writes the frames to the link, then a heartbeat as a barrier
// (the link handles frames in order), and returns, in upper-case hex,
// every frame the link sent before the heartbeat's answer.
func converse(t *testing.T, h *harness, m *metersim.Meter, frames ...string) []string {
	t.Helper()
	outs := func() []meter.FrameEvent {
		return h.observed.find(func(e meter.FrameEvent) bool { return e.Dir == meter.DirOut })
	}
	before := len(outs())
	for _, f := range frames {
		if err := m.WriteRaw(unhex(t, f)); err != nil {
			t.Fatal(err)
		}
	}
	res, err := m.Heartbeat(ctxT(t), meter.StateSignedIn, metersim.Shift{Driver: "X"})
	if err != nil || !res.OK() {
		t.Fatalf("barrier heartbeat: %+v, %v", res, err)
	}
	got := outs()[before:]
	var hexes []string
	for _, e := range got[:len(got)-1] {
		hexes = append(hexes, strings.ToUpper(hex.EncodeToString(e.Raw)))
	}
	return hexes
}

func want(t *testing.T, what string, got []string, wantHex ...string) {
	t.Helper()
	if strings.Join(got, " ") != strings.Join(wantHex, " ") {
		t.Errorf("%s: link sent\n %v\nwant\n %v", what, got, wantHex)
	}
}

// TestSignInResult: only 操作结果 0x90 makes an event. The worked sign-in
// with result 0xFF makes none; it is counted and shown, logged with the
// licence masked, and neither is answered (the standard defines no
// answer to 0x00E1).
func TestSignInResult(t *testing.T) {
	h := startLink(t, ok, nil)
	m, _ := h.meter(metersim.Options{AnswerTimeout: 500 * time.Millisecond})
	want(t, "sign-in 0x90", converse(t, h, m, hexSignIn))
	evs := h.events.all()
	if len(evs) != 1 || evs[0].Identity() != "SIGN_IN|42108319880906011X|202611281030|1234" || evs[0].Result != meter.ResultOK {
		t.Fatalf("events after the 0x90 sign-in: %+v", evs)
	}
	want(t, "sign-in 0xFF", converse(t, h, m, hexSignInFailed))
	if n := len(h.events.all()); n != 1 {
		t.Errorf("a failed sign-in reached the handler (%d events)", n)
	}
	st := h.link.Stats()
	if st.FailedSignIns != 1 || st.LastFailedSignIn == nil || st.LastFailedSignIn.Result != 0xFF ||
		st.LastFailedSignIn.DriverLicence != "42108319880906011X" || st.LastFailedSignIn.MeterTime != "202611281030" {
		t.Errorf("failed sign-in stats %+v %+v", st.FailedSignIns, st.LastFailedSignIn)
	}
	if logCount(h.logs, "failed sign-in") != 1 || logCount(h.logs, "**************011X") == 0 {
		t.Errorf("logs:\n%s", h.logs)
	}
}

// TestSignInAnswerDialect: a meter configured as expecting an answer to
// 0x00E1 gets 0x90 once the event is durable, 0xFF while it is not, and
// 0x90 for a failed sign-in it reported (received, nothing to store).
func TestSignInAnswerDialect(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	h := startLink(t, func(context.Context, meter.Event) error {
		if fail.Load() {
			return errors.New("outbox full (test)")
		}
		return nil
	}, func(c *meter.LinkConfig) { c.Dialect.AnswerSignIn = true })
	m, _ := h.meter(metersim.Options{AnswerTimeout: 500 * time.Millisecond})
	want(t, "not durable", converse(t, h, m, hexSignIn), "55AA0005000000E1FF1B55AA")
	fail.Store(false)
	want(t, "durable", converse(t, h, m, hexSignIn), hexSignInAnswer)
	want(t, "failed sign-in", converse(t, h, m, hexSignInFailed), hexSignInAnswer)
}

// TestRequestIdentity: the answer to 0x00E0 / 0x00E3 carries the identity
// the terminal set (licence, company, plate), refuses with 0xFF when none
// is set, and is zero-filled with 0x90 when the meter reads the card.
func TestRequestIdentity(t *testing.T) {
	var id meter.Identity
	set := false
	h := startLink(t, ok, func(c *meter.LinkConfig) {
		c.Now = func() time.Time { return answerNow }
		c.Identity = func() (meter.Identity, bool) { return id, set }
	})
	m, _ := h.meter(metersim.Options{AnswerTimeout: 500 * time.Millisecond})
	want(t, "no driver set", converse(t, h, m, hexSignInRequest), hexRequestRefused)
	id, set = meter.Identity{CompanyLicence: "440300000001", DriverLicence: "42108319880906011X", Plate: meter.PlateTail("粤B12345")}, true
	want(t, "driver set", converse(t, h, m, hexSignInRequest), hexRequestAnswerID)
	want(t, "flag 0x00", converse(t, h, m, hexRequestFlagZero))
	st := h.link.Stats()
	if st.Frames.SignInRequest != 3 || st.Frames.RequestNotWanted != 1 || st.Answers.Request != 2 || st.Answers.Refused != 1 {
		t.Errorf("stats frames %+v answers %+v", st.Frames, st.Answers)
	}

	h2 := startLink(t, ok, func(c *meter.LinkConfig) { c.Now = func() time.Time { return answerNow } })
	m2, _ := h2.meter(metersim.Options{AnswerTimeout: 500 * time.Millisecond})
	want(t, "identity from the meter", converse(t, h2, m2, hexSignInRequest), hexRequestAnsMeter)
}

// TestVendorCommandWords: a dialect's command words are read as the
// standard messages and answered in the meter's own word.
func TestVendorCommandWords(t *testing.T) {
	h := startLink(t, ok, func(c *meter.LinkConfig) {
		c.Dialect = meter.Dialect{SignIn: 0xF0E1, SignOut: 0xF0E4, SignOutResend: 0xF0F1}
	})
	m, _ := h.meter(metersim.Options{AnswerTimeout: 500 * time.Millisecond})
	signOut := unhex(t, hexSignOut)
	signOut[6], signOut[7] = 0xF0, 0xE4
	signOut[len(signOut)-3] ^= 0xF0 // the check byte follows the command word
	want(t, "vendor sign-in", converse(t, h, m, hexVendorSignIn))
	want(t, "vendor sign-out", converse(t, h, m, hex.EncodeToString(signOut)), hexVendorSignOutAns)
	evs := h.events.all()
	if len(evs) != 2 || evs[0].Type() != punch.SignIn || evs[1].Type() != punch.SignOut || evs[1].Command != meter.CmdSignOut {
		t.Fatalf("events %+v", evs)
	}
	if st := h.link.Stats(); st.Frames.SignIn != 1 || st.Frames.SignOut != 1 || st.Frames.Unknown != 0 {
		t.Errorf("frames %+v", st.Frames)
	}
	if err := (meter.Dialect{SignIn: meter.CmdHeartbeat}).Validate(); err == nil {
		t.Error("a standard command as the sign-in word was accepted")
	}
	if err := (meter.Dialect{SignIn: 0xF0E1, SignOut: 0xF0E1}).Validate(); err == nil {
		t.Error("one word for two messages was accepted")
	}
	if err := (meter.Dialect{CountLimitWidth: 3}).Validate(); err == nil {
		t.Error("count limit width 3 was accepted")
	}
}

// TestHeartbeatCountLimitWidth: a meter that counts the limit in 2 bytes
// gets the 11-byte heartbeat answer.
func TestHeartbeatCountLimitWidth(t *testing.T) {
	h := startLink(t, ok, func(c *meter.LinkConfig) { c.Dialect.CountLimitWidth = 2 })
	m, _ := h.meter(metersim.Options{AnswerTimeout: 500 * time.Millisecond})
	// converse's barrier is itself a heartbeat, whose answer could be taken
	// for this one's: wait for this answer alone.
	outs := func() []meter.FrameEvent {
		return h.observed.find(func(e meter.FrameEvent) bool { return e.Dir == meter.DirOut })
	}
	if err := m.WriteRaw(unhex(t, hexHeartbeat)); err != nil {
		t.Fatal(err)
	}
	testsupport.WaitFor(t, 5*time.Second, "the heartbeat answer", func() bool { return len(outs()) == 1 })
	want(t, "2-byte count limit", []string{strings.ToUpper(hex.EncodeToString(outs()[0].Raw))}, hexHeartbeatAnsWide)
}

// TestUnreadableAnsweredOnce: the agent's own 0xFF answer handed back by
// the line (too short to be a sign-out) is answered once, not in a loop,
// and a burst is logged once with a count; once sent long enough ago it
// is no longer taken for an echo.
func TestUnreadableAnsweredOnce(t *testing.T) {
	h := startLink(t, ok, func(c *meter.LinkConfig) { c.EchoWindow = time.Millisecond })
	m, _ := h.meter(metersim.Options{AnswerTimeout: 500 * time.Millisecond})
	want(t, "first unreadable sign-out", converse(t, h, m, hexSignOutRefusal), hexSignOutRefusal)
	time.Sleep(5 * time.Millisecond) // past the echo window: the same bytes are a new unreadable frame
	got := converse(t, h, m, hexSignOutRefusal, hexSignOutRefusal, hexSignOutRefusal)
	want(t, "the same bytes again", got)
	st := h.link.Stats()
	if st.BadBodies != 4 || st.BadBodiesUnanswered != 3 || st.Answers.Failed != 1 {
		t.Errorf("stats bad bodies %d unanswered %d failed answers %d", st.BadBodies, st.BadBodiesUnanswered, st.Answers.Failed)
	}
	if n := logCount(h.logs, "meter report unreadable"); n != 1 {
		t.Errorf("%d unreadable warnings, want 1:\n%s", n, h.logs)
	}
}

// TestLinkEchoingLine runs a shift over a real pseudo-terminal whose meter
// side hands back every byte the agent sends (an RS-485 adapter that keeps
// its receiver on). Heartbeats, the sign-in and the sign-out still work;
// every echo is dropped and counted; the agent sends no frame that was
// not due, and logs no warning.
func TestLinkEchoingLine(t *testing.T) {
	h := startLink(t, ok, nil)
	m, _ := h.meter(metersim.Options{AnswerTimeout: 500 * time.Millisecond, Echo: true})
	ctx := ctxT(t)
	s := metersim.Shift{Driver: "42108319880906011X", Trips: 1234, At: shiftStart}
	for i := range 3 {
		if res, err := m.Heartbeat(ctx, 0, s); err != nil || !res.OK() {
			t.Fatalf("heartbeat %d: %+v, %v", i, res, err)
		}
	}
	if res, err := m.SignIn(ctx, s); err != nil || !res.OK() || res.Request.Sends != 1 {
		t.Fatalf("sign-in: %+v, %v", res, err)
	}
	if res, err := m.SignOut(ctx, s); err != nil || !res.OK() || res.Sends != 1 || res.Request.Sends != 1 {
		t.Fatalf("sign-out: %+v, %v", res, err)
	}
	if res, err := m.Heartbeat(ctx, meter.StateSignedIn, s); err != nil || !res.OK() {
		t.Fatal(res, err)
	}
	// The last answer's echo is on its way back: wait for it.
	waitFor(t, "every echo", func() bool { return h.link.Stats().Echoes == 7 })
	time.Sleep(100 * time.Millisecond) // room for anything undue to show
	st := h.link.Stats()
	outs := h.observed.find(func(e meter.FrameEvent) bool { return e.Dir == meter.DirOut })
	// Due: 4 heartbeat answers, 2 request answers, 1 sign-out answer.
	if len(outs) != 7 || st.Echoes != 7 || st.Answers.Heartbeat != 4 || st.Answers.Request != 2 || st.Answers.OK != 1 ||
		st.Answers.Failed != 0 || st.BadBodies != 0 {
		t.Errorf("%d frames sent; stats echoes %d answers %+v bad bodies %d", len(outs), st.Echoes, st.Answers, st.BadBodies)
	}
	if n := len(h.events.all()); n != 2 {
		t.Errorf("%d events, want the sign-in and the sign-out", n)
	}
	if n := logCount(h.logs, "level=WARN") + logCount(h.logs, "level=ERROR"); n != 0 {
		t.Errorf("%d warnings on an echoing line:\n%s", n, h.logs)
	}
	if m.Echoed() != int(st.BytesOut) {
		t.Errorf("the line echoed %d of %d bytes", m.Echoed(), st.BytesOut)
	}
}
