package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"syscall"
	"time"

	"taxi-agent/internal/admin"
	"taxi-agent/internal/cli"
	"taxi-agent/internal/meter"
)

// cmdMeter dispatches `agent meter <sub>`.
func cmdMeter(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return cli.Dispatch(ctx, "agent meter", "-config FILE [flags]", []command{
		{Name: "monitor", Summary: "print every frame on the meter line, decoded (the agent must be stopped)", Run: cmdMeterMonitor},
	}, args, stdout, stderr)
}

func cmdMeterMonitor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("meter monitor", "-config FILE [-answer] [-hex]", stderr)
	path := fs.String("config", defaultConfigPath, "config file")
	answer := fs.Bool("answer", false, "answer heartbeats and sign-in/out requests so the meter stays happy (sign-ins and sign-outs are never answered or stored)")
	withHex := fs.Bool("hex", false, "also print every frame's bytes in hex")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadToolConfig(*path)
	if err != nil {
		return err
	}
	pc := meter.PortConfig{Device: cfg.Meter.Device, Baud: cfg.Meter.Baud, Parity: cfg.Meter.Parity, StopBits: cfg.Meter.StopBits}
	port, err := meter.OpenSerial(pc)
	if err != nil {
		return portError(ctx, pc.Device, cfg.Admin.Socket, err)
	}
	m := &monitor{
		out: stdout, answer: *answer, hex: *withHex, now: time.Now,
		device: byte(cfg.Meter.DeviceType), vendor: byte(cfg.Meter.Vendor),
		dialect: meter.Dialect{SignIn: uint16(cfg.Meter.SignInCommand), SignOut: uint16(cfg.Meter.SignOutCommand),
			SignOutResend: uint16(cfg.Meter.ResendSignOutCommand), CountLimitWidth: cfg.Meter.HeartbeatCountLimitWidth},
	}
	fmt.Fprintf(stdout, "monitoring %s at %d baud, parity %s, %d stop bit(s); Ctrl-C to stop\n",
		pc.Device, cfg.Meter.Baud, cfg.Meter.Parity, cfg.Meter.StopBits)
	fmt.Fprintln(stdout, "→ from the meter   ← to the meter   ✗ bytes dropped")
	if m.answer {
		fmt.Fprintln(stdout, "answering heartbeats and requests; sign-ins and sign-outs are NOT answered or stored: a meter re-sends a sign-out once the agent runs, but reports a sign-in only once")
	} else {
		fmt.Fprintln(stdout, "listening only (-answer to answer heartbeats and requests); nothing is stored")
	}
	return m.run(ctx, port)
}

// portError explains why the meter port could not be opened.
func portError(ctx context.Context, device, socket string, err error) error {
	switch {
	case errors.Is(err, meter.ErrPortBusy), errors.Is(err, syscall.EBUSY): // EBUSY: TIOCEXCL, held exclusively
		if pid, perr := admin.Dial(socket).Ping(ctx); perr == nil {
			return fmt.Errorf("meter port %s is held by the running agent (pid %d): stop it first with 'systemctl stop taxi-agent', and start it again afterwards", device, pid)
		}
		return fmt.Errorf("meter port %s is in use by another process (the agent, or another monitor): stop it first", device)
	case isPermission(err):
		return admin.PermissionDenied(device, err)
	}
	return fmt.Errorf("open meter port: %w", err)
}

func isPermission(err error) bool { return errors.Is(err, fs.ErrPermission) }

// monitor prints the frames on the line and, with answer, keeps the meter
// content. It never stores anything and never acknowledges a sign-in or
// sign-out.
type monitor struct {
	out            io.Writer
	answer, hex    bool
	device, vendor byte
	dialect        meter.Dialect // the meter's command words are shown as the standard's
	now            func() time.Time

	dec meter.Decoder
	buf []byte
}

// run reads the port until ctx ends or the port fails.
func (m *monitor) run(ctx context.Context, port io.ReadWriteCloser) error {
	type chunk struct {
		b   []byte
		err error
	}
	chunks := make(chan chunk)
	go func() {
		for {
			b := make([]byte, 512)
			n, err := port.Read(b)
			select {
			case chunks <- chunk{b[:n], err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer port.Close()

	quiet := time.NewTimer(time.Hour)
	quiet.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(m.out, "stopped")
			return nil
		case <-quiet.C:
			// The line went quiet in the middle of a frame.
			if err := m.dec.Abandon(); err != nil {
				m.dropped(err, m.dec.Last())
			}
			if err := m.drain(port); err != nil {
				return err
			}
		case c := <-chunks:
			if len(c.b) > 0 {
				m.dec.Write(c.b)
				if err := m.drain(port); err != nil {
					return err
				}
			}
			if c.err != nil {
				return fmt.Errorf("read meter port: %w", c.err)
			}
		}
		quiet.Stop()
		if m.dec.Buffered() > 0 {
			quiet.Reset(meter.DefaultFrameTimeout)
		}
	}
}

// drain prints every complete frame and answers those it should.
func (m *monitor) drain(port io.Writer) error {
	for {
		f, err := m.dec.Next()
		if errors.Is(err, meter.ErrNeedMore) {
			return nil
		}
		if err != nil {
			m.dropped(err, m.dec.Last())
			continue
		}
		m.print("→", f, m.dec.Last())
		if reply, ok := m.reply(f); ok {
			m.buf = meter.AppendFrame(m.buf[:0], reply)
			if _, err := port.Write(m.buf); err != nil {
				return fmt.Errorf("answer the meter: %w", err)
			}
			m.print("←", reply, m.buf)
		}
	}
}

// reply is the answer to f in -answer mode: heartbeats and requests only.
func (m *monitor) reply(f meter.Frame) (meter.Frame, bool) {
	if !m.answer {
		return meter.Frame{}, false
	}
	out := meter.Frame{Device: m.device, Vendor: m.vendor, Command: f.Command}
	switch m.dialect.Standard(f.Command) {
	case meter.CmdHeartbeat:
		out.Data = meter.HeartbeatAnswer{CountLimitWidth: m.dialect.CountLimitWidth}.Append(nil)
	case meter.CmdSignInRequest, meter.CmdSignOutRequest:
		out.Data = meter.RequestAnswer{SwipeTime: meter.BCDTimeOf(m.now()), Result: meter.ResultOK}.Append(nil)
	default:
		return meter.Frame{}, false
	}
	return out, true
}

func (m *monitor) stamp() string { return m.now().In(meter.Zone).Format("15:04:05.000") }

func (m *monitor) print(dir string, f meter.Frame, raw []byte) {
	f.Command = m.dialect.Standard(f.Command)
	note := ""
	switch f.Command {
	case meter.CmdSignIn:
		if dir == "→" {
			note = " [not stored: the agent is stopped, and a meter reports a sign-in once]"
		}
	case meter.CmdSignOut, meter.CmdSignOutResend:
		if dir == "→" {
			note = " [not answered: the meter keeps it]"
		}
	}
	fmt.Fprintf(m.out, "%s %s %-16s %s%s\n", m.stamp(), dir, meter.CommandName(f.Command), describe(dir, f), note)
	if m.hex {
		fmt.Fprintf(m.out, "%12s   %s\n", "", hex.EncodeToString(raw))
	}
}

func (m *monitor) dropped(why error, raw []byte) {
	fmt.Fprintf(m.out, "%s ✗ %-16s %d byte(s): %s\n", m.stamp(), dropName(why), len(raw), hex.EncodeToString(raw))
}

// dropName names why bytes were dropped, in the monitor's column.
func dropName(err error) string {
	switch {
	case errors.Is(err, meter.ErrNoise):
		return "NOISE"
	case errors.Is(err, meter.ErrBadCheck):
		return "BAD_CHECK"
	case errors.Is(err, meter.ErrBadLength):
		return "BAD_LENGTH"
	case errors.Is(err, meter.ErrMissingEnd):
		return "MISSING_END"
	case errors.Is(err, meter.ErrTruncated):
		return "TRUNCATED"
	}
	return "DROPPED"
}
