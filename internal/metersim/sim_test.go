package metersim_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"taxi-agent/internal/meter"
	"taxi-agent/internal/metersim"
)

// agentEnd plays the agent by hand on the far end of a pseudo-terminal:
// it decodes what the meter sends and answers with reply.
type agentEnd struct {
	port *os.File
	mu   sync.Mutex
	got  []meter.Frame
	bad  []error
}

func startAgentEnd(t *testing.T, reply func(n int, f meter.Frame) []byte) (*metersim.Meter, *agentEnd) {
	t.Helper()
	p, _, a := agentPort(t, reply)
	m := metersim.New(p.Master, metersim.Options{AnswerTimeout: 300 * time.Millisecond, RetryDelay: 5 * time.Millisecond, MaxSends: 5})
	t.Cleanup(func() { m.Close() })
	return m, a
}

// agentPort opens a pseudo-terminal and plays the agent on its port; the
// caller starts the meter on p.Master.
func agentPort(t *testing.T, reply func(n int, f meter.Frame) []byte) (*metersim.PTY, *os.File, *agentEnd) {
	t.Helper()
	p, err := metersim.OpenPTY()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	port, err := os.OpenFile(p.Path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	a := &agentEnd{port: port}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var d meter.Decoder
		buf := make([]byte, 512)
		for {
			n, err := port.Read(buf)
			d.Write(buf[:n])
			for {
				f, derr := d.Next()
				if derr == meter.ErrNeedMore {
					break
				}
				a.mu.Lock()
				if derr != nil {
					a.bad = append(a.bad, derr)
					a.mu.Unlock()
					continue
				}
				f.Data = bytes.Clone(f.Data)
				a.got = append(a.got, f)
				k := len(a.got)
				a.mu.Unlock()
				if reply != nil {
					if w := reply(k, f); w != nil {
						port.Write(w)
					}
				}
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		p.Close()
		port.Close()
		<-done
	})
	return p, port, a
}

func (a *agentEnd) frames() []meter.Frame {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]meter.Frame(nil), a.got...)
}

func (a *agentEnd) errs() []error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]error(nil), a.bad...)
}

func answer(cmd uint16, result byte) []byte {
	return meter.AppendFrame(nil, meter.Frame{Command: cmd, Data: []byte{result}})
}

var worked = metersim.Shift{Driver: "42108319880906011X", Trips: 1234, At: time.Date(2026, 11, 28, 10, 30, 0, 0, meter.Zone)}

// TestShiftWorkedFrame: the simulator's sign-in of the protocol document's (docs/meter-protocol.md) worked
// example is the worked frame, byte for byte.
func TestShiftWorkedFrame(t *testing.T) {
	const want = "55aa0038020000e13434303330303030303030310000000034323130383331393838303930363031315800423132333435202611281030000004d2909055aa"
	if got := hex.EncodeToString(meter.AppendFrame(nil, worked.SignInFrame())); got != want {
		t.Errorf("sign-in frame\n got  %s\n want %s", got, want)
	}
	out, err := meter.ParseSignOut(worked.SignOutFrame(false).Data)
	if err != nil {
		t.Fatal(err)
	}
	end, err := out.ShiftEnd.Time()
	if err != nil || !end.Equal(worked.At.Add(8*time.Hour)) || out.CompanyLicence != metersim.DefaultCompany ||
		out.Plate != metersim.DefaultPlate || out.TotalTrips != 1234 || out.FieldErr != nil {
		t.Errorf("sign-out body %+v, end %v, %v", out, end, err)
	}
	if f := worked.SignOutFrame(true); f.Command != meter.CmdSignOutResend || len(f.Data) != meter.SignOutSize {
		t.Errorf("re-send frame %v", f)
	}
}

// okAnswer answers a request 0x90 with the given identity (zero-filled:
// the meter reads the card itself).
func okAnswer(cmd uint16, id meter.Identity) []byte {
	a := meter.RequestAnswer{CompanyLicence: id.CompanyLicence, DriverLicence: id.DriverLicence, Plate: id.Plate, Result: meter.ResultOK}
	return meter.AppendFrame(nil, meter.Frame{Command: cmd, Data: a.Append(nil)})
}

// standardAgent answers requests 0x90 with id and reports 0x90.
func standardAgent(id meter.Identity) func(int, meter.Frame) []byte {
	return func(_ int, f meter.Frame) []byte {
		switch f.Command {
		case meter.CmdSignInRequest, meter.CmdSignOutRequest:
			return okAnswer(f.Command, id)
		case meter.CmdSignOut, meter.CmdSignOutResend:
			return answer(f.Command, meter.ResultOK)
		}
		return nil
	}
}

// TestResendUntilOK: unanswered, then refused, then accepted: three sends
// of the same bytes; the meter counts the one refusal.
func TestResendUntilOK(t *testing.T) {
	m, a := startAgentEnd(t, func(n int, f meter.Frame) []byte {
		switch n {
		case 1:
			return nil
		case 2:
			return answer(f.Command, meter.ResultFailed)
		}
		return answer(f.Command, meter.ResultOK)
	})
	res, err := m.Send(context.Background(), worked.SignInFrame())
	if err != nil || res.Sends != 3 || !bytes.Equal(res.History, []byte{0xFF, 0x90}) || !res.OK() {
		t.Fatalf("result %+v, %v", res, err)
	}
	if n := m.Refusals(); n != 1 {
		t.Errorf("Refusals() = %d after one 0xFF, want 1", n)
	}
	got := a.frames()
	want := worked.SignInFrame()
	if len(got) != 3 {
		t.Fatalf("agent got %d frames", len(got))
	}
	for _, f := range got {
		if f.Command != want.Command || !bytes.Equal(f.Data, want.Data) || f.Device != meter.DeviceMeter {
			t.Errorf("frame %v differs from the sign-in", f)
		}
	}
}

// TestStandardSignIn: the meter asks (0x00E0, flag 0x90), signs in with
// the identity the terminal gave, and reports 0x00E1 once with result
// 0x90; it waits for no answer and never re-sends. Zero-filled identity
// means the meter's own.
func TestStandardSignIn(t *testing.T) {
	id := meter.Identity{CompanyLicence: "440300999999", DriverLicence: "11010519491231002X", Plate: "D12345"}
	m, a := startAgentEnd(t, standardAgent(id))
	res, err := m.SignIn(context.Background(), worked)
	if err != nil || !res.OK() || res.Sends != 1 || res.Answer != 0 || res.Request == nil || !res.Request.OK() || res.Identity != id {
		t.Fatalf("result %+v, %v", res, err)
	}
	time.Sleep(700 * time.Millisecond) // two answer timeouts: no re-send comes
	got := a.frames()
	if len(got) != 2 || got[0].Command != meter.CmdSignInRequest || !bytes.Equal(got[0].Data, []byte{0x90}) || got[1].Command != meter.CmdSignIn {
		t.Fatalf("agent got %v", got)
	}
	in, err := meter.ParseSignIn(got[1].Data)
	if err != nil || in.DriverLicence != id.DriverLicence || in.CompanyLicence != id.CompanyLicence || in.Plate != id.Plate || in.Result != meter.ResultOK {
		t.Errorf("sign-in body %+v, %v", in, err)
	}

	m2, a2 := startAgentEnd(t, standardAgent(meter.Identity{}))
	if res, err := m2.SignIn(context.Background(), worked); err != nil || res.Identity.DriverLicence != worked.Driver {
		t.Fatalf("meter's own identity: %+v, %v", res, err)
	}
	waitFrames(t, a2, 2)
	if in, _ := meter.ParseSignIn(a2.frames()[1].Data); in.DriverLicence != worked.Driver {
		t.Errorf("sign-in with the meter's own card: %+v", in)
	}
}

// TestSignInRefused: a 0xFF answer to the request ends the sign-in; no
// 0x00E1 goes out. A shift with a result byte reports a failed sign-in.
func TestSignInRefused(t *testing.T) {
	m, a := startAgentEnd(t, func(_ int, f meter.Frame) []byte {
		if f.Command == meter.CmdSignInRequest {
			r := meter.RequestAnswer{Result: meter.ResultFailed}
			return meter.AppendFrame(nil, meter.Frame{Command: f.Command, Data: r.Append(nil)})
		}
		return nil
	})
	res, err := m.SignIn(context.Background(), worked)
	if !errors.Is(err, metersim.ErrRefused) || res.OK() || res.Request == nil || res.Request.Sends != 1 {
		t.Fatalf("refused: %+v, %v", res, err)
	}
	time.Sleep(150 * time.Millisecond)
	if got := a.frames(); len(got) != 1 {
		t.Fatalf("agent got %v after a refusal", got)
	}

	m2, a2 := startAgentEnd(t, standardAgent(meter.Identity{}))
	failed := worked
	failed.Result = 0xFF
	if _, err := m2.SignIn(context.Background(), failed, metersim.NoRequest()); err != nil {
		t.Fatal(err)
	}
	waitFrames(t, a2, 1)
	if in, _ := meter.ParseSignIn(a2.frames()[0].Data); in.Result != 0xFF {
		t.Errorf("failed sign-in reported with result 0x%02X", in.Result)
	}
}

// TestLegacySignIn: a meter that expects an answer re-sends 0x00E1 until
// the agent answers 0x90.
func TestLegacySignIn(t *testing.T) {
	var signIns atomic.Int32 // counted apart: a slow machine may see the request twice
	p, _, a := agentPort(t, func(_ int, f meter.Frame) []byte {
		if f.Command == meter.CmdSignInRequest {
			return okAnswer(f.Command, meter.Identity{})
		}
		if f.Command == meter.CmdSignIn && signIns.Add(1) >= 2 {
			return answer(f.Command, meter.ResultOK)
		}
		return nil
	})
	m := metersim.New(p.Master, metersim.Options{AnswerTimeout: 200 * time.Millisecond, Dialect: meter.Dialect{AnswerSignIn: true}})
	defer m.Close()
	res, err := m.SignIn(context.Background(), worked)
	if err != nil || res.Sends != 2 || !res.OK() || res.Answer != meter.ResultOK {
		t.Fatalf("legacy sign-in: %+v, %v", res, err)
	}
	n := 0
	for _, f := range a.frames() {
		if f.Command == meter.CmdSignIn {
			n++
		}
	}
	if n != 2 {
		t.Errorf("agent got %d sign-ins, want two", n)
	}
}

// TestSignOutResentAsF1: a sign-out the agent does not answer 0x90 is
// sent again as 0x00F1 until it is.
func TestSignOutResentAsF1(t *testing.T) {
	m, a := startAgentEnd(t, func(n int, f meter.Frame) []byte {
		switch f.Command {
		case meter.CmdSignOutRequest:
			return okAnswer(f.Command, meter.Identity{})
		case meter.CmdSignOut:
			return answer(f.Command, meter.ResultFailed)
		case meter.CmdSignOutResend:
			if n >= 4 {
				return answer(f.Command, meter.ResultOK)
			}
		}
		return nil
	})
	res, err := m.SignOut(context.Background(), worked)
	if err != nil || res.Sends != 3 || res.Command != meter.CmdSignOutResend || !res.OK() {
		t.Fatalf("sign-out: %+v, %v", res, err)
	}
	var cmds []uint16
	for _, f := range a.frames() {
		cmds = append(cmds, f.Command)
	}
	if want := []uint16{meter.CmdSignOutRequest, meter.CmdSignOut, meter.CmdSignOutResend, meter.CmdSignOutResend}; !slicesEqual(cmds, want) {
		t.Errorf("commands %04X, want %04X", cmds, want)
	}
}

// TestVendorWords: a meter of a vendor dialect sends its own command
// words with the standard bodies.
func TestVendorWords(t *testing.T) {
	p, _, a := agentPort(t, func(_ int, f meter.Frame) []byte {
		switch f.Command {
		case meter.CmdSignInRequest, meter.CmdSignOutRequest:
			return okAnswer(f.Command, meter.Identity{})
		case 0xF0E4:
			return answer(f.Command, meter.ResultOK)
		}
		return nil
	})
	d := meter.Dialect{SignIn: 0xF0E1, SignOut: 0xF0E4, SignOutResend: 0xF0F1}
	// Every frame is answered, so the timeout costs nothing; it is long
	// enough that an emulated CPU's slow answer is not taken for none and
	// re-sent, which would add frames.
	m := metersim.New(p.Master, metersim.Options{AnswerTimeout: time.Second, Dialect: d})
	defer m.Close()
	ctx := context.Background()
	if _, err := m.SignIn(ctx, worked); err != nil {
		t.Fatal(err)
	}
	if res, err := m.SignOut(ctx, worked); err != nil || res.Command != 0xF0E4 {
		t.Fatal(res, err)
	}
	got := a.frames()
	if len(got) != 4 || got[1].Command != 0xF0E1 || got[3].Command != 0xF0E4 || len(got[3].Data) != meter.SignOutSize {
		t.Fatalf("frames %v", got)
	}
}

// TestEchoLine: with Echo, every byte the agent sends comes back to it.
func TestEchoLine(t *testing.T) {
	p, port, a := agentPort(t, nil)
	m := metersim.New(p.Master, metersim.Options{Echo: true})
	defer m.Close()
	w := answer(meter.CmdSignOut, meter.ResultOK)
	if _, err := port.Write(w); err != nil {
		t.Fatal(err)
	}
	waitFrames(t, a, 1)
	if got := a.frames()[0]; got.Command != meter.CmdSignOut || !bytes.Equal(got.Data, []byte{0x90}) || m.Echoed() != len(w) {
		t.Errorf("echo %v, %d bytes", got, m.Echoed())
	}
}

func TestGiveUp(t *testing.T) {
	m, _ := startAgentEnd(t, func(n int, f meter.Frame) []byte {
		switch f.Command {
		case meter.CmdSignOutRequest:
			return okAnswer(f.Command, meter.Identity{})
		case meter.CmdSignOut, meter.CmdSignOutResend:
			return answer(f.Command, meter.ResultFailed)
		}
		return nil
	})
	ctx := context.Background()
	if res, err := m.SignIn(ctx, worked); !errors.Is(err, metersim.ErrNoAnswer) || res.Request.Sends != 5 || res.OK() {
		t.Errorf("unanswered: %+v, %v", res, err)
	}
	if res, err := m.SignOut(ctx, worked); !errors.Is(err, metersim.ErrRefused) || res.Sends != 5 || len(res.History) != 5 {
		t.Errorf("refused: %+v, %v", res, err)
	}
	if res, err := m.Heartbeat(ctx, meter.StateSignedIn, worked); !errors.Is(err, metersim.ErrNoAnswer) || res.Sends != 1 {
		t.Errorf("heartbeat: %+v, %v", res, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(20*time.Millisecond, cancel)
	if _, err := m.Send(cctx, worked.SignInFrame()); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func waitFrames(t *testing.T, a *agentEnd, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for len(a.frames()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("agent got %d frames, want %d", len(a.frames()), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func slicesEqual(a, b []uint16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestStatusQuery: the meter answers status queries on its own, with its
// work state.
func TestStatusQuery(t *testing.T) {
	m, a := startAgentEnd(t, standardAgent(meter.Identity{}))
	query := meter.AppendFrame(nil, meter.Frame{Command: meter.CmdStatus, Data: meter.StatusQuery{Time: time.Now()}.Append(nil)})
	status := func() meter.StatusReply {
		t.Helper()
		before := len(a.frames())
		if _, err := a.port.Write(query); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Second)
		for len(a.frames()) == before {
			if time.Now().After(deadline) {
				t.Fatal("no status reply")
			}
			time.Sleep(2 * time.Millisecond)
		}
		f := a.frames()[before]
		r, err := meter.ParseStatusReply(f.Data)
		if err != nil || f.Command != meter.CmdStatus {
			t.Fatalf("status reply %v: %v", f, err)
		}
		return r
	}
	if r := status(); r.WorkState != 0x01 || r.DriverLicence != "" || r.Serial != 100001 {
		t.Errorf("before sign-in: %+v", r)
	}
	if _, err := m.SignIn(context.Background(), worked); err != nil {
		t.Fatal(err)
	}
	waitFrames(t, a, 3) // the status reply, the request and the sign-in
	if r := status(); r.WorkState != 0x00 || r.DriverLicence != worked.Driver || r.TotalTrips != 1234 || r.Plate != "B12345" {
		t.Errorf("after sign-in: %+v", r)
	}
	if m.StatusQueries() != 2 {
		t.Errorf("answered %d queries", m.StatusQueries())
	}
}

// TestFaults: every injected fault is rejected by the decoder, and none
// of them yields a frame.
func TestFaults(t *testing.T) {
	m, a := startAgentEnd(t, nil)
	f := worked.SignOutFrame(false)
	noise, err := m.Noise(64)
	if err != nil || len(noise) != 64 {
		t.Fatal(noise, err)
	}
	if err := m.BrokenCheck(f); err != nil {
		t.Fatal(err)
	}
	if err := m.MissingEnd(f); err != nil {
		t.Fatal(err)
	}
	if n, err := m.Truncated(f, 0); err != nil || n < 1 || n >= len(meter.AppendFrame(nil, f)) {
		t.Fatal(n, err)
	}
	if err := m.SendOnly(worked.HeartbeatFrame(meter.StateSignedIn)); err != nil { // a clean frame last
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for len(a.frames()) == 0 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	got := a.frames()
	if len(got) != 1 || got[0].Command != meter.CmdHeartbeat {
		t.Fatalf("frames through the faults: %v", got)
	}
	var check, end bool
	for _, err := range a.errs() {
		check = check || err == meter.ErrBadCheck
		end = end || err == meter.ErrMissingEnd
	}
	if !check || !end {
		t.Errorf("decoder errors %v: want a bad check and a missing end", a.errs())
	}
}

func TestCloseStopsReader(t *testing.T) {
	p, err := metersim.OpenPTY()
	if err != nil {
		t.Skip(err)
	}
	defer p.Close()
	m := metersim.New(p.Master, metersim.Options{})
	m.Close()
	select {
	case <-m.Done():
	default:
		t.Fatal("reader still running after Close")
	}
	if _, err := m.Heartbeat(context.Background(), 0, worked); err == nil {
		t.Error("exchange on a closed line succeeded")
	}
}
