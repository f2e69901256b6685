package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"taxi-agent/internal/admin/admintest"
	"taxi-agent/internal/meter"
	"taxi-agent/internal/metersim"
)

// watchedOutput is the monitor's stdout, written by the monitor's
// goroutine and waited on by the test.
type watchedOutput struct {
	mu      sync.Mutex
	buf     strings.Builder
	changed chan struct{}
}

func newWatchedOutput() *watchedOutput { return &watchedOutput{changed: make(chan struct{}, 1)} }

func (w *watchedOutput) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	select {
	case w.changed <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (w *watchedOutput) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// waitFor waits until the output holds want, failing after a few seconds.
func (w *watchedOutput) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for !strings.Contains(w.String(), want) {
		select {
		case <-w.changed:
		case <-deadline:
			t.Fatalf("monitor never printed %q:\n%s", want, w)
		}
	}
}

// monitorRig is a simulated meter on a real pseudo-terminal and a config
// whose meter.device is the terminal.
type monitorRig struct {
	sim    *metersim.Meter
	pty    *metersim.PTY
	config string
	socket string
}

func newMonitorRig(t *testing.T, answerTimeout time.Duration) *monitorRig {
	t.Helper()
	p, err := metersim.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	sim := metersim.New(p.Master, metersim.Options{AnswerTimeout: answerTimeout, MaxSends: 2})
	t.Cleanup(func() {
		p.Close()
		<-sim.Done()
	})
	dir := admintest.ShortTempDir(t)
	r := &monitorRig{sim: sim, pty: p, config: filepath.Join(dir, "agent.toml"), socket: filepath.Join(dir, "admin.sock")}
	body := fmt.Sprintf("[meter]\ndevice = %q\nbaud = 9600\n[outbox]\npath = %q\n[admin]\nsocket = %q\n",
		p.Path, filepath.Join(dir, "outbox.db"), r.socket)
	if err := os.WriteFile(r.config, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return r
}

// start runs `agent meter monitor` until the test ends.
func (r *monitorRig) start(t *testing.T, args ...string) *watchedOutput {
	t.Helper()
	out := newWatchedOutput()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		var errb strings.Builder
		err := run(ctx, append([]string{"meter", "monitor", "-config", r.config}, args...), out, &errb)
		if err != nil {
			err = fmt.Errorf("%w (stderr %q)", err, errb.String())
		}
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("monitor: %v", err)
		}
	})
	out.waitFor(t, "monitoring "+r.pty.Path+" at 9600 baud")
	return out
}

var shift = metersim.Shift{Driver: admintest.LicenceA, Trips: 1234, At: time.Date(2026, 11, 28, 10, 30, 0, 0, meter.Zone),
	ShiftTrips: 18, Mileage: 2105, Fare: 6120}

func TestMeterMonitorAnswers(t *testing.T) {
	r := newMonitorRig(t, 150*time.Millisecond)
	out := r.start(t, "-answer", "-hex")
	ctx := context.Background()

	res, err := r.sim.Heartbeat(ctx, meter.StateSignedIn, shift)
	if err != nil || !res.OK() || len(res.Data) != meter.HeartbeatAnswerSize {
		t.Fatalf("heartbeat not answered: %+v %v", res, err)
	}
	out.waitFor(t, "→ HEARTBEAT        state signed_in, driver "+admintest.LicenceA+", company 440300000001\n")
	out.waitFor(t, "← HEARTBEAT        answer: no limits\n")

	res, err = r.sim.RequestSignIn(ctx, shift)
	if err != nil || !res.OK() || len(res.Data) != meter.RequestAnswerSize {
		t.Fatalf("sign-in request not answered: %+v %v", res, err)
	}
	out.waitFor(t, "← SIGN_IN_REQUEST  answer: allowed (0x90) at ")

	// A sign-in is never acknowledged, even to a meter that waits for it.
	res, err = r.sim.Send(ctx, shift.SignInFrame())
	if !errors.Is(err, metersim.ErrNoAnswer) || res.Sends != 2 {
		t.Fatalf("sign-in was answered by the monitor: %+v %v", res, err)
	}
	out.waitFor(t, "→ SIGN_IN          driver "+admintest.LicenceA+", company 440300000001, plate B12345, signed in 2026-11-28 10:30, total trips 1234, result 0x90 [not stored: the agent is stopped, and a meter reports a sign-in once]\n")

	res, err = r.sim.SignOut(ctx, shift, metersim.Resend(true))
	if !errors.Is(err, metersim.ErrNoAnswer) {
		t.Fatalf("sign-out was answered by the monitor: %+v %v", res, err)
	}
	out.waitFor(t, "→ SIGN_OUT_RESEND  driver "+admintest.LicenceA+", company 440300000001, plate B12345, shift 2026-11-28 10:30 – 2026-11-28 18:30, 210.5 km (147.3 km with passengers), 18 trip(s), fare ¥612.0, total trips 1234 [not answered: the meter keeps it]\n")
	if s := out.String(); strings.Contains(s, "← SIGN_IN ") || strings.Contains(s, "← SIGN_OUT") {
		t.Errorf("the monitor answered an event:\n%s", s)
	}

	// the protocol document's (docs/meter-protocol.md) worked sign-in, raw, printed with its bytes.
	worked := "55aa0038020000e13434303330303030303030310000000034323130383331393838303930363031315800423132333435202611281030000004d2909055aa"
	b, _ := hex.DecodeString(worked)
	if err := r.sim.WriteRaw(b); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "   "+worked+"\n")
}

func TestMeterMonitorShowsBadBytes(t *testing.T) {
	r := newMonitorRig(t, 150*time.Millisecond)
	out := r.start(t)
	hb := shift.HeartbeatFrame(meter.StateHired | meter.StateSignedIn)

	// A bad check byte drops the frame up to its end marker, which looks
	// like the start of a frame until the line stays quiet.
	if err := r.sim.BrokenCheck(hb); err != nil {
		t.Fatal(err)
	}
	wire := meter.AppendFrame(nil, hb)
	wire[len(wire)-3] ^= 0x5A
	n := len(wire) - 2
	out.waitFor(t, fmt.Sprintf("✗ BAD_CHECK        %d byte(s): %s\n", n, hex.EncodeToString(wire[:n])))
	out.waitFor(t, "✗ TRUNCATED        2 byte(s): 55aa\n")

	if err := r.sim.WriteRaw([]byte{0x00, 0x13, 0x37}); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "✗ NOISE            3 byte(s): 001337\n")

	if _, err := r.sim.Truncated(hb, 20); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "✗ TRUNCATED        20 byte(s): "+hex.EncodeToString(meter.AppendFrame(nil, hb)[:20])+"\n")

	// Listen-only: a heartbeat goes unanswered, and is still decoded.
	if _, err := r.sim.Heartbeat(context.Background(), meter.StateHired|meter.StateSignedIn, shift); !errors.Is(err, metersim.ErrNoAnswer) {
		t.Fatalf("listen-only monitor answered a heartbeat: %v", err)
	}
	out.waitFor(t, "→ HEARTBEAT        state hired|signed_in, driver "+admintest.LicenceA)
	if strings.Contains(out.String(), "←") && !strings.Contains(out.String(), "← to the meter") {
		t.Errorf("listen-only monitor sent something:\n%s", out)
	}
}

func TestMeterMonitorPortBusy(t *testing.T) {
	r := newMonitorRig(t, time.Second)
	port, err := meter.OpenSerial(meter.PortConfig{Device: r.pty.Path})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	_, _, err = runCLI(t, "meter", "monitor", "-config", r.config)
	want := "meter port " + r.pty.Path + " is in use by another process"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("monitor on a busy port: %v\nwant %q", err, want)
	}

	// A user who is not root cannot even open a port held exclusively
	// (TIOCEXCL): the kernel says EBUSY, the monitor says busy.
	if os.Geteuid() == 0 {
		if err := os.Chown(r.pty.Path, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		stderr, code := runAs(t, 65534, 65534, "meter", "monitor", "-config", r.config)
		if code != 1 || !strings.HasPrefix(stderr, "agent: "+want) {
			t.Errorf("monitor as nobody on a busy port: exit %d %q\nwant %q", code, stderr, want)
		}
	}

	// With the daemon answering on its socket, the monitor names it.
	ob := admintest.OpenOutbox(t, filepath.Join(t.TempDir(), "outbox.db"))
	admintest.ServeAt(t, r.socket, &admintest.Backend{Store: ob}, nil)
	_, _, err = runCLI(t, "meter", "monitor", "-config", r.config)
	want = fmt.Sprintf("meter port %s is held by the running agent (pid %d): stop it first with 'systemctl stop taxi-agent'", r.pty.Path, os.Getpid())
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("monitor with the agent running: %v\nwant %q", err, want)
	}
}

func TestMeterUsage(t *testing.T) {
	if _, errOut, err := runCLI(t, "meter"); !errors.Is(err, errUsage) || !strings.Contains(errOut, "usage: agent meter <command>") || !strings.Contains(errOut, "\n  monitor ") {
		t.Errorf("agent meter: %v %q", err, errOut)
	}
	if _, _, err := runCLI(t, "meter", "watch"); !errors.Is(err, errUsage) {
		t.Errorf("agent meter watch: %v", err)
	}
}

// TestMeterMonitorPermission: serial ports belong to group dialout.
func TestMeterMonitorPermission(t *testing.T) {
	admintest.RequireRoot(t)
	r := newMonitorRig(t, time.Second)
	if err := os.Chown(r.pty.Path, 0, 20); err != nil { // root:dialout
		t.Fatal(err)
	}
	if err := os.Chmod(r.pty.Path, 0o660); err != nil {
		t.Fatal(err)
	}
	stderr, code := runAs(t, 65534, 65534, "meter", "monitor", "-config", r.config)
	want := "agent: permission denied on " + r.pty.Path + ": run as root or a member of group dialout\n"
	if code != 1 || stderr != want {
		t.Errorf("monitor as nobody: exit %d %q\nwant %q", code, stderr, want)
	}
}
