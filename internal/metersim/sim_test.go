package metersim_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"sync"
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
	m := metersim.New(p.Master, metersim.Options{AnswerTimeout: 100 * time.Millisecond, RetryDelay: 5 * time.Millisecond, MaxSends: 5})
	t.Cleanup(func() {
		m.Close()
		p.Close()
		port.Close()
		<-done
	})
	return m, a
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

// TestShiftWorkedFrame: the simulator's sign-in of PROTOCOL.md's worked
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

// TestResendUntilOK: unanswered, then refused, then accepted: three sends
// of the same bytes.
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
	res, err := m.SignIn(context.Background(), worked)
	if err != nil || res.Sends != 3 || !bytes.Equal(res.History, []byte{0xFF, 0x90}) || !res.OK() {
		t.Fatalf("result %+v, %v", res, err)
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

func TestGiveUp(t *testing.T) {
	m, _ := startAgentEnd(t, func(n int, f meter.Frame) []byte {
		if f.Command == meter.CmdSignOut {
			return answer(f.Command, meter.ResultFailed)
		}
		return nil
	})
	ctx := context.Background()
	if res, err := m.SignIn(ctx, worked); !errors.Is(err, metersim.ErrNoAnswer) || res.Sends != 5 || res.Answer != 0 {
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

// TestStatusQuery: the meter answers status queries on its own, with its
// work state.
func TestStatusQuery(t *testing.T) {
	m, a := startAgentEnd(t, func(n int, f meter.Frame) []byte {
		if f.Command == meter.CmdSignIn {
			return answer(f.Command, meter.ResultOK)
		}
		return nil
	})
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
