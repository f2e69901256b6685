package meter_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"taxi-agent/internal/meter"
	"taxi-agent/internal/metersim"
)

var (
	update = flag.Bool("update", false, "rewrite the .golden files of testdata/*.stream")
	record = flag.Bool("record", false, "record testdata/sim_session.stream from a simulated session over a pty")
)

// A .stream file is a capture of the line: one read or write per line,
// "<" for bytes from the meter, ">" for bytes to it, in hex; "#" starts a
// comment. Its .golden file lists what the decoder makes of it.

type chunk struct {
	in bool
	b  []byte
}

func readStream(t *testing.T, path string) []chunk {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []chunk
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		b, err := hex.DecodeString(strings.ReplaceAll(line[1:], " ", ""))
		if err != nil || (line[0] != '<' && line[0] != '>') {
			t.Fatalf("%s:%d: bad line %q", path, n, line)
		}
		out = append(out, chunk{in: line[0] == '<', b: b})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// describe renders the decoding of one direction of a stream.
func describe(chunks []chunk, in bool) (lines []string, needAnswer, answers int) {
	var d meter.Decoder
	emit := func(f meter.Frame, err error) {
		if err != nil {
			lines = append(lines, fmt.Sprintf("drop  %-22s %x", err, d.Last()))
			return
		}
		line := fmt.Sprintf("frame %-22s %x", meter.CommandName(f.Command), d.Last())
		switch f.Command {
		case meter.CmdSignIn, meter.CmdSignOut, meter.CmdSignOutResend:
			if in {
				ev, err := meter.EventFromFrame(f)
				if err != nil {
					line += " (" + err.Error() + ")"
				} else {
					line += " " + ev.Identity()
				}
			}
			needAnswer++
		case meter.CmdHeartbeat, meter.CmdSignInRequest, meter.CmdSignOutRequest:
			needAnswer++
		}
		lines = append(lines, line)
	}
	for _, c := range chunks {
		if c.in != in {
			continue
		}
		d.Write(c.b)
		for {
			f, err := d.Next()
			if err == meter.ErrNeedMore {
				break
			}
			emit(f, err)
		}
	}
	for d.Buffered() > 0 {
		emit(meter.Frame{}, d.Abandon())
		for {
			f, err := d.Next()
			if err == meter.ErrNeedMore {
				break
			}
			emit(f, err)
		}
	}
	return lines, needAnswer, needAnswer
}

// TestCapturedStreams decodes every capture in testdata and compares the
// result with its golden file. The agent's side must be clean frames, and
// must hold one answer for every frame of the meter that needs one.
func TestCapturedStreams(t *testing.T) {
	paths, err := filepath.Glob("testdata/*.stream")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no captures: %v", err)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			chunks := readStream(t, path)
			in, needAnswer, _ := describe(chunks, true)
			out, _, answers := describe(chunks, false)
			for _, l := range out {
				if strings.HasPrefix(l, "drop") {
					t.Errorf("the agent sent bytes that are not a frame: %s", l)
				}
			}
			statusQueries := 0
			for _, l := range out {
				if strings.Contains(l, " STATUS ") {
					statusQueries++
				}
			}
			if hasAgent := len(out) > 0; hasAgent && len(out)-statusQueries != needAnswer {
				t.Errorf("%d frames need an answer, the agent sent %d answers", needAnswer, len(out)-statusQueries)
			}
			_ = answers
			got := "# meter → agent\n" + strings.Join(in, "\n") + "\n# agent → meter\n" + strings.Join(out, "\n") + "\n"
			golden := strings.TrimSuffix(path, ".stream") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("decoding of %s changed:\n got:\n%s\nwant:\n%s", path, got, want)
			}
		})
	}
}

// tee records every read and write of a port.
type tee struct {
	io.ReadWriteCloser
	mu     sync.Mutex
	chunks []chunk
}

func (p *tee) Read(b []byte) (int, error) {
	n, err := p.ReadWriteCloser.Read(b)
	if n > 0 {
		p.mu.Lock()
		p.chunks = append(p.chunks, chunk{in: true, b: append([]byte(nil), b[:n]...)})
		p.mu.Unlock()
	}
	return n, err
}

func (p *tee) Write(b []byte) (int, error) {
	p.mu.Lock()
	p.chunks = append(p.chunks, chunk{in: false, b: append([]byte(nil), b...)})
	p.mu.Unlock()
	return p.ReadWriteCloser.Write(b)
}

// TestRecordSession records testdata/sim_session.stream: a scripted shift
// of the simulated meter with line faults, as the agent's port saw it
// through tarm/serial and a pseudo-terminal. Run with -record, then
// -update to refresh its golden file.
func TestRecordSession(t *testing.T) {
	if !*record {
		t.Skip("records a capture; run with -record")
	}
	var port *tee
	opened := make(chan *metersim.PTY, 1)
	link := meter.NewLink(meter.LinkConfig{
		Open: func() (io.ReadWriteCloser, error) {
			p, err := metersim.OpenPTY()
			if err != nil {
				return nil, err
			}
			sp, err := meter.OpenSerial(meter.PortConfig{Device: p.Path})
			if err != nil {
				return nil, err
			}
			port = &tee{ReadWriteCloser: sp}
			opened <- p
			return port, nil
		},
		Handle:         func(context.Context, meter.Event) error { return nil },
		StatusInterval: 700 * time.Millisecond,
		FrameTimeout:   100 * time.Millisecond,
		Now:            func() time.Time { return time.Date(2026, 11, 28, 10, 30, 5, 0, meter.Zone) },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- link.Run(ctx) }()
	p := <-opened
	defer p.Close()
	m := metersim.New(p.Master, metersim.Options{AnswerTimeout: 300 * time.Millisecond, Seed: 2026})
	s := metersim.Shift{Driver: "42108319880906011X", Trips: 1234, At: time.Date(2026, 11, 28, 10, 30, 0, 0, meter.Zone),
		End: time.Date(2026, 11, 28, 18, 30, 0, 0, meter.Zone), ShiftTrips: 42, Mileage: 12345, Fare: 45678}
	steps := []func() error{
		func() error { _, err := m.Heartbeat(ctx, 0, metersim.Shift{}); return err },
		func() error { _, err := m.RequestSignIn(ctx, s); return err },
		func() error { _, err := m.SignIn(ctx, s); return err },
		func() error { _, err := m.Noise(17); return err },
		func() error { _, err := m.Heartbeat(ctx, meter.StateSignedIn, s); return err },
		func() error { return m.BrokenCheck(s.SignInFrame()) },
		func() error { _, err := m.Heartbeat(ctx, meter.StateSignedIn|meter.StateHired, s); return err },
		func() error { _, err := m.Truncated(s.SignOutFrame(false), 30); return err },
		func() error { time.Sleep(300 * time.Millisecond); return nil }, // let the link abandon it
		func() error {
			return m.SendOnly(meter.Frame{Device: 2, Command: meter.CmdTrip, Data: unhex(t, hexTrip)[8 : len(unhex(t, hexTrip))-3]})
		},
		func() error { return m.MissingEnd(s.HeartbeatFrame(meter.StateSignedIn)) },
		func() error { _, err := m.RequestSignOut(ctx, s); return err },
		func() error { _, err := m.SignOut(ctx, s); return err },
		func() error { time.Sleep(800 * time.Millisecond); return nil }, // a status query
		func() error { _, err := m.SignOut(ctx, s, metersim.Resend(true), metersim.Mode(1)); return err },
		func() error { _, err := m.Heartbeat(ctx, 0, metersim.Shift{}); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	cancel()
	<-done
	port.mu.Lock()
	defer port.mu.Unlock()
	var b strings.Builder
	b.WriteString("# Recorded by TestRecordSession (-record): the simulated meter over a pseudo-terminal,\n")
	b.WriteString("# read by the agent through meter.OpenSerial (tarm/serial). One read or write per line:\n")
	b.WriteString("# '<' meter to agent, '>' agent to meter. No real meter was available for this capture.\n")
	for _, c := range port.chunks {
		dir := ">"
		if c.in {
			dir = "<"
		}
		fmt.Fprintf(&b, "%s %x\n", dir, c.b)
	}
	if err := os.WriteFile("testdata/sim_session.stream", []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
