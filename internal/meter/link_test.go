package meter_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"taxi-agent/internal/meter"
	"taxi-agent/internal/metersim"
	"taxi-agent/internal/testsupport"
)

var shiftStart = time.Date(2026, 11, 28, 6, 30, 0, 0, meter.Zone)

// TestLinkMixedStream sends 100 sign-ins and sign-outs over a real
// pseudo-terminal, each after a line fault: noise, a frame with a broken
// check byte or end marker, or a truncated frame. The meter answers
// faster than the link's frame timeout, so frames held behind a truncated
// one are re-sent. Every send of a valid frame must reach the handler
// exactly once and be answered; no broken frame may make an event.
func TestLinkMixedStream(t *testing.T) {
	h := startLink(t, ok, nil)
	// A heartbeat is sent once and waits one AnswerTimeout for its answer;
	// an emulated armv7 CPU shared with other tests may take longer than 40 ms.
	answer := 40 * time.Millisecond
	if testsupport.Emulator() != "" {
		answer = 500 * time.Millisecond
	}
	m, _ := h.meter(metersim.Options{AnswerTimeout: answer, Seed: 7})
	ctx := ctxT(t)
	rng := rand.New(rand.NewPCG(2026, 11))

	poison := func(i int) meter.Frame {
		s := metersim.Shift{Driver: fmt.Sprintf("POISON%012d", i), Trips: 9999, At: shiftStart}
		if i%2 == 0 {
			return s.SignInFrame()
		}
		return s.SignOutFrame(false)
	}
	want := map[string]int{} // identity → sends
	var sends, answered, noise, broken, truncated, missing int
	for i := range 100 {
		switch rng.IntN(5) {
		case 0:
			b, err := m.Noise(1 + rng.IntN(40))
			if err != nil {
				t.Fatal(err)
			}
			noise += len(b)
		case 1:
			broken++
			if err := m.BrokenCheck(poison(i)); err != nil {
				t.Fatal(err)
			}
		case 2:
			truncated++
			if _, err := m.Truncated(poison(i), 0); err != nil {
				t.Fatal(err)
			}
		case 3:
			missing++
			if err := m.MissingEnd(poison(i)); err != nil {
				t.Fatal(err)
			}
		}
		s := metersim.Shift{Driver: fmt.Sprintf("4210831988%08d", i), Trips: uint32(1000 + i), At: shiftStart.Add(time.Duration(i) * time.Hour)}
		var res metersim.Result
		var err error
		var f meter.Frame
		switch i % 3 {
		case 0:
			res, err = m.SignIn(ctx, s)
			f = s.SignInFrame()
		case 1:
			res, err = m.SignOut(ctx, s)
			f = s.SignOutFrame(false)
		case 2:
			res, err = m.SignOut(ctx, s, metersim.Resend(true))
			f = s.SignOutFrame(true)
		}
		if err != nil || !res.OK() {
			t.Fatalf("frame %d: %+v, %v", i, res, err)
		}
		ev, err := meter.EventFromFrame(f)
		if err != nil {
			t.Fatal(err)
		}
		want[ev.Identity()] += res.Sends
		sends += res.Sends
		if i%3 != 0 {
			answered += res.Sends // a standard sign-in is not answered
		}
		if i%10 == 0 {
			if res, err := m.Heartbeat(ctx, meter.StateSignedIn, s); err != nil || !res.OK() {
				t.Fatalf("heartbeat %d: %+v, %v", i, res, err)
			}
		}
	}
	t.Logf("%d sends of 100 frames; faults: %d noise bytes, %d broken checks, %d truncated, %d missing ends",
		sends, noise, broken, truncated, missing)

	// Late duplicates may still be in flight: wait until the handler has
	// seen every send, then check it saw nothing else.
	waitFor(t, "every send to be handled", func() bool { return len(h.events.all()) >= sends })
	got := h.events.byIdentity()
	for id, n := range want {
		if got[id] != n {
			t.Errorf("%s handled %d times, sent %d times", id, got[id], n)
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("event %s does not come from a valid frame", id)
		}
	}
	st := h.link.Stats()
	if n := st.Frames.SignIn + st.Frames.SignOut + st.Frames.SignOutResend; n != uint64(sends) || st.Answers.OK != uint64(answered) {
		t.Errorf("frames %d, answered %d; want %d and %d", n, st.Answers.OK, sends, answered)
	}
	if st.Frames.Heartbeat != 10 || st.Answers.Heartbeat != 10 || st.Answers.Failed != 0 {
		t.Errorf("heartbeats %d answered %d, failed answers %d", st.Frames.Heartbeat, st.Answers.Heartbeat, st.Answers.Failed)
	}
	if st.BadChecks < uint64(broken) || st.Resyncs < uint64(broken+truncated+missing) ||
		st.BytesDropped < uint64(noise) || st.Resyncs != st.BadChecks+st.BadLengths+st.MissingEnds+st.Truncated {
		t.Errorf("fault counters %+v for %d broken, %d truncated, %d missing, %d noise bytes", st, broken, truncated, missing, noise)
	}
	if !st.Connected || st.LastFrameAt.IsZero() || st.Heartbeat == nil || !st.Heartbeat.SignedIn {
		t.Errorf("link state %+v", st)
	}
}

// TestLinkHandlerErrorThenResend: a sign-out that cannot be stored is
// answered 0xFF, and the meter's re-send (0x00F1) is then stored and
// answered 0x90. A sign-in whose store fails is not answered (the
// standard defines no answer): the handler must keep it. The log says
// once that the sign-in is kept and once that the sign-out is refused.
func TestLinkHandlerErrorThenResend(t *testing.T) {
	var calls atomic.Int32
	h := startLink(t, func(context.Context, meter.Event) error {
		if calls.Add(1) <= 2 {
			return errors.New("outbox full (test)")
		}
		return nil
	}, nil)
	m, _ := h.meter(metersim.Options{AnswerTimeout: 500 * time.Millisecond, RetryDelay: 10 * time.Millisecond})
	s := metersim.Shift{Driver: "42108319880906011X", Trips: 1234, At: time.Date(2026, 11, 28, 10, 30, 0, 0, meter.Zone)}
	if res, err := m.SignIn(ctxT(t), s); err != nil || res.Sends != 1 || len(res.History) != 0 {
		t.Fatalf("sign-in %+v, %v", res, err)
	}
	waitFor(t, "the sign-in to be handled", func() bool { return len(h.events.all()) == 1 })
	res, err := m.SignOut(ctxT(t), s)
	if err != nil || !bytes.Equal(res.History, []byte{meter.ResultFailed, meter.ResultOK}) || res.Sends != 2 || res.Command != meter.CmdSignOutResend {
		t.Fatalf("result %+v, %v; want answers FF then 90 over 2 sends, the second as 0x00F1", res, err)
	}
	evs := h.events.all()
	if len(evs) != 3 || evs[0].Identity() != "SIGN_IN|42108319880906011X|202611281030|1234" ||
		evs[1].Identity() != "SIGN_OUT|42108319880906011X|202611281830|1234" || evs[2].Identity() != evs[1].Identity() {
		t.Fatalf("handled %+v", evs)
	}
	if evs[0].ReceivedAt.IsZero() || !evs[0].MeterTime.Equal(s.At) || evs[0].Plate != "B12345" {
		t.Errorf("event %+v", evs[0])
	}
	st := h.link.Stats()
	if st.Answers.Failed != 1 || st.Answers.OK != 1 || st.HandlerErrors != 2 {
		t.Errorf("answers %+v, handler errors %d", st.Answers, st.HandlerErrors)
	}
	// The sign-in's failure began the run of failures; the sign-out's
	// 0xFF is still said once, or the log would never tell that the
	// meter is being refused.
	if logCount(h.logs, "meter event not stored; the agent keeps it") != 1 || logCount(h.logs, "meter event not stored; answered 0xFF") != 1 ||
		logCount(h.logs, "stored again") != 1 || logCount(h.logs, "**************011X") == 0 {
		t.Errorf("logs:\n%s", h.logs)
	}
}

// TestLinkSurvivesReopen closes the pseudo-terminal under the link, like
// a USB adapter pulled out, and makes the next opens fail: the link must
// reopen with backoff and serve the meter on the new line, logging the
// failure once and the recovery once.
func TestLinkSurvivesReopen(t *testing.T) {
	h := startLink(t, ok, nil)
	ctx := ctxT(t)
	m1, p1 := h.meter(metersim.Options{AnswerTimeout: 500 * time.Millisecond})
	s := metersim.Shift{Driver: "42108319880906011X", Trips: 1234, At: shiftStart}
	if res, err := m1.SignIn(ctx, s); err != nil || !res.OK() {
		t.Fatalf("sign-in before the hangup: %+v, %v", res, err)
	}
	waitFor(t, "the sign-in to be handled", func() bool { return len(h.events.all()) == 1 })

	h.failOpens.Store(3)
	p1.Close()
	m2, _ := h.meter(metersim.Options{AnswerTimeout: 500 * time.Millisecond})
	if res, err := m2.SignOut(ctx, s); err != nil || !res.OK() {
		t.Fatalf("sign-out after the reopen: %+v, %v", res, err)
	}

	st := h.link.Stats()
	if st.Opens != 2 || st.Reopens != 1 || st.PortErrors != 4 || st.LastPortError == "" || !st.Connected {
		t.Errorf("stats after reopen: %+v", st)
	}
	if got := h.events.byIdentity(); len(got) != 2 {
		t.Errorf("events %v", got)
	}
	if logCount(h.logs, "meter port failed") != 1 || logCount(h.logs, "meter link recovered") != 1 {
		t.Errorf("want one failure and one recovery logged:\n%s", h.logs)
	}
}

// TestLinkAnswers checks the answers byte for byte: heartbeat (the protocol document's (docs/meter-protocol.md)
// worked frame), sign-in and sign-out requests, and the configured device
// and vendor bytes; frames the agent does not handle are counted, not
// answered.
func TestLinkAnswers(t *testing.T) {
	now := time.Date(2026, 11, 28, 2, 30, 0, 0, time.UTC) // 10:30 in UTC+8
	h := startLink(t, ok, func(c *meter.LinkConfig) { c.Now = func() time.Time { return now } })
	m, _ := h.meter(metersim.Options{AnswerTimeout: 500 * time.Millisecond, Vendor: 0x07})
	ctx := ctxT(t)
	s := metersim.Shift{Driver: "42108319880906011X"}

	res, err := m.Heartbeat(ctx, meter.StateHired|meter.StateSignedIn, s)
	if err != nil || !res.OK() {
		t.Fatalf("heartbeat: %+v, %v", res, err)
	}
	outs := h.observed.find(func(e meter.FrameEvent) bool { return e.Dir == meter.DirOut })
	if len(outs) != 1 || hex.EncodeToString(outs[0].Raw) != "55aa000e000000e900000000000000000000e755aa" {
		t.Fatalf("heartbeat answer %v", outs)
	}
	hb := h.link.Stats().Heartbeat
	if hb == nil || !hb.Hired || !hb.SignedIn || hb.ForcedOn || hb.ForcedOff || hb.DriverLicence != s.Driver || !hb.At.Equal(now) {
		t.Errorf("heartbeat state %+v", hb)
	}

	for _, req := range []func(context.Context, metersim.Shift) (metersim.Result, error){m.RequestSignIn, m.RequestSignOut} {
		res, err := req(ctx, s)
		if err != nil || !res.OK() {
			t.Fatalf("request: %+v, %v", res, err)
		}
		a, err := meter.ParseRequestAnswer(res.Data)
		if err != nil || len(res.Data) != meter.RequestAnswerSize || a.SwipeTime.String() != "202611281030" ||
			a.Result != meter.ResultOK || a.DriverLicence != "" || a.TimeLimit != [5]byte{} {
			t.Errorf("request answer %+v, %v", a, err)
		}
	}

	// Unhandled frames: a trip record and a vendor command.
	if err := m.SendOnly(meter.Frame{Device: 2, Command: meter.CmdTrip, Data: dataOf(t, hexTrip)}); err != nil {
		t.Fatal(err)
	}
	if err := m.SendOnly(meter.Frame{Device: 2, Command: 0x01A2, Data: []byte{0xBE, 0xEF}}); err != nil {
		t.Fatal(err)
	}
	if res, err := m.Heartbeat(ctx, 0, s); err != nil || !res.OK() { // in order after them
		t.Fatal(res, err)
	}
	st := h.link.Stats()
	if st.Frames.Unknown != 2 || st.Frames.SignInRequest != 1 || st.Frames.SignOutRequest != 1 ||
		st.Answers.Request != 2 || st.Answers.Heartbeat != 2 || len(h.events.all()) != 0 {
		t.Errorf("stats %+v", st)
	}
	if len(h.observed.find(func(e meter.FrameEvent) bool { return e.Dir == meter.DirOut })) != 4 {
		t.Error("an unhandled frame was answered")
	}
}

func TestLinkDeviceAndVendorBytes(t *testing.T) {
	h := startLink(t, ok, func(c *meter.LinkConfig) { c.Device, c.Vendor = 0x01, 0x33 })
	m, _ := h.meter(metersim.Options{AnswerTimeout: 500 * time.Millisecond})
	if _, err := m.SignOut(ctxT(t), metersim.Shift{Driver: "X", At: shiftStart}, metersim.NoRequest()); err != nil {
		t.Fatal(err)
	}
	outs := h.observed.find(func(e meter.FrameEvent) bool { return e.Dir == meter.DirOut })
	if len(outs) != 1 || hex.EncodeToString(outs[0].Raw) != "55aa0005013300e4904355aa" {
		t.Fatalf("answer %v", outs)
	}
}

// TestLinkMonitorMode: without a handler nothing is stored, so sign-ins,
// sign-outs and requests go unanswered; heartbeats are answered, and the
// observer sees every frame and every dropped byte.
func TestLinkMonitorMode(t *testing.T) {
	h := startLink(t, nil, nil)
	m, _ := h.meter(metersim.Options{AnswerTimeout: 100 * time.Millisecond, MaxSends: 2})
	ctx := ctxT(t)
	s := metersim.Shift{Driver: "42108319880906011X", Trips: 1, At: shiftStart}
	if _, err := m.Noise(5); err != nil {
		t.Fatal(err)
	}
	if res, err := m.Send(ctx, s.SignOutFrame(false)); !errors.Is(err, metersim.ErrNoAnswer) || res.Sends != 2 {
		t.Fatalf("sign-out in monitor mode: %+v, %v; want no answer", res, err)
	}
	if _, err := m.RequestSignIn(ctx, s); !errors.Is(err, metersim.ErrNoAnswer) {
		t.Fatalf("request in monitor mode: %v", err)
	}
	if _, err := m.SignIn(ctx, s, metersim.NoRequest()); err != nil {
		t.Fatal(err)
	}
	if res, err := m.Heartbeat(ctx, meter.StateSignedIn, s); err != nil || !res.OK() {
		t.Fatalf("heartbeat in monitor mode: %+v, %v", res, err)
	}
	st := h.link.Stats()
	if st.Frames.SignOut != 2 || st.Frames.SignIn != 1 || st.Frames.SignInRequest != 2 ||
		st.Answers.OK+st.Answers.Failed+st.Answers.Request != 0 || st.Answers.Heartbeat != 1 {
		t.Errorf("stats %+v", st)
	}
	ins := h.observed.find(func(e meter.FrameEvent) bool { return e.Dir == meter.DirIn && e.Err == nil })
	drops := h.observed.find(func(e meter.FrameEvent) bool { return e.Err != nil })
	outs := h.observed.find(func(e meter.FrameEvent) bool { return e.Dir == meter.DirOut })
	if len(ins) != 6 || len(outs) != 1 || len(drops) == 0 {
		t.Fatalf("observed %d in, %d out, %d dropped", len(ins), len(outs), len(drops))
	}
	if ins[0].Frame.Command != meter.CmdSignOut || !bytes.Equal(ins[0].Raw, meter.AppendFrame(nil, s.SignOutFrame(false))) {
		t.Errorf("first frame observed: %v", ins[0])
	}
	t.Logf("monitor lines:\n%v\n%v", drops[0], ins[0])
}

// TestLinkStatusQuery: the link queries the meter's status periodically
// and keeps the answer.
func TestLinkStatusQuery(t *testing.T) {
	h := startLink(t, ok, func(c *meter.LinkConfig) { c.StatusInterval = 20 * time.Millisecond })
	m, _ := h.meter(metersim.Options{})
	waitFor(t, "a status reply", func() bool { return h.link.Stats().MeterStatus != nil })
	st := h.link.Stats()
	if r := st.MeterStatus.Reply; r.Serial != 100001 || r.DeviceType != meter.DeviceMeter || r.WorkState != 0x01 {
		t.Errorf("status reply %+v", r)
	}
	if m.StatusQueries() == 0 || st.Answers.StatusQueries == 0 || st.Frames.StatusReply == 0 {
		t.Errorf("queries: meter answered %d, link sent %d, got %d replies", m.StatusQueries(), st.Answers.StatusQueries, st.Frames.StatusReply)
	}
}

// TestLinkBadBodies: a sign-out too short to read is answered 0xFF, a
// sign-in too short to read is counted and not answered; one with an
// invalid meter time is still an event, with the error attached.
func TestLinkBadBodies(t *testing.T) {
	h := startLink(t, ok, nil)
	m, _ := h.meter(metersim.Options{AnswerTimeout: 500 * time.Millisecond, MaxSends: 1})
	ctx := ctxT(t)
	short := metersim.Shift{Driver: "42108319880906011X"}.SignOutFrame(false)
	short.Data = short.Data[:40]
	if res, err := m.Send(ctx, short); !errors.Is(err, metersim.ErrRefused) || res.Answer != meter.ResultFailed {
		t.Fatalf("short body: %+v, %v; want 0xFF", res, err)
	}
	shortIn := metersim.Shift{Driver: "42108319880906011X"}.SignInFrame()
	shortIn.Data = shortIn.Data[:40]
	if err := m.SendOnly(shortIn); err != nil {
		t.Fatal(err)
	}
	bad := metersim.Shift{Driver: "42108319880906011X", Trips: 7}.SignInFrame()
	copy(bad.Data[41:47], []byte{0x20, 0x26, 0x02, 0x30, 0x10, 0x30}) // 30 February
	if err := m.SendOnly(bad); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the sign-in with an invalid time", func() bool { return len(h.events.all()) == 1 })
	evs := h.events.all()
	if len(evs) != 1 || !errors.Is(evs[0].MeterTimeErr, meter.ErrBadTime) || !evs[0].MeterTime.IsZero() ||
		evs[0].Identity() != "SIGN_IN|42108319880906011X|202602301030|7" {
		t.Fatalf("events %+v", evs)
	}
	if st := h.link.Stats(); st.BadBodies != 2 || st.Answers.Failed != 1 || st.Answers.OK != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestLinkStopsWhileOpenFails: while the device is gone and every open
// fails, the failure is logged once, and Run still returns promptly on
// cancel (checked by startLink's cleanup).
func TestLinkStopsWhileOpenFails(t *testing.T) {
	h := startLink(t, ok, nil)
	_, p := h.meter(metersim.Options{})
	h.failOpens.Store(1 << 30)
	p.Close()
	waitFor(t, "repeated open failures", func() bool { return h.link.Stats().PortErrors >= 4 })
	st := h.link.Stats()
	if st.Connected || st.Opens != 1 || logCount(h.logs, "meter port failed") != 1 {
		t.Errorf("stats %+v, logs:\n%s", st, h.logs)
	}
}

// TestLinkAbandonsTruncatedFrame: a truncated frame whose declared length
// swallows the next, complete frame is given up after the frame timeout,
// and the complete frame is then answered without the meter re-sending.
func TestLinkAbandonsTruncatedFrame(t *testing.T) {
	h := startLink(t, ok, func(c *meter.LinkConfig) { c.Dialect.AnswerSignIn = true })
	m, _ := h.meter(metersim.Options{AnswerTimeout: 2 * time.Second, Dialect: meter.Dialect{AnswerSignIn: true}})
	s := metersim.Shift{Driver: "42108319880906011X", Trips: 1, At: shiftStart}
	if _, err := m.Truncated(s.SignOutFrame(false), 20); err != nil { // declares 101 bytes; 20 + 63 arrive
		t.Fatal(err)
	}
	res, err := m.SignIn(ctxT(t), s, metersim.NoRequest())
	if err != nil || !res.OK() || res.Sends != 1 {
		t.Fatalf("sign-in behind a truncated frame: %+v, %v", res, err)
	}
	if st := h.link.Stats(); st.Truncated != 1 || st.Frames.SignIn != 1 || st.Frames.SignOut != 0 {
		t.Errorf("stats %+v", st)
	}
}

// zeroPort is a port whose Read returns 0, nil at once, as some drivers
// do on a read timeout. It is a fake: no real device here behaves so.
type zeroPort struct{ reads atomic.Int64 }

func (p *zeroPort) Read([]byte) (int, error)    { p.reads.Add(1); return 0, nil }
func (p *zeroPort) Write(b []byte) (int, error) { return len(b), nil }
func (p *zeroPort) Close() error                { return nil }

// TestLinkZeroReadsDoNotSpin: such reads are neither an end of file nor a
// reason to spin.
func TestLinkZeroReadsDoNotSpin(t *testing.T) {
	port := &zeroPort{}
	link := meter.NewLink(meter.LinkConfig{Open: func() (io.ReadWriteCloser, error) { return port, nil }, Handle: ok})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- link.Run(ctx) }()
	time.Sleep(200 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The reader pauses 20 ms after an empty read: about 10 reads, not millions.
	if n := port.reads.Load(); n < 2 || n > 50 {
		t.Errorf("%d reads in 200 ms", n)
	}
	if st := link.Stats(); st.PortErrors != 0 || st.Opens != 1 {
		t.Errorf("stats %+v", st)
	}
}
