package meter

import (
	"context"
	"fmt"
	"io"
	"time"

	"taxi-agent/internal/redact"
)

// decode handles every complete frame in the decoder. It returns an error
// only when an answer could not be written (the port failed).
func (l *Link) decode(ctx context.Context, port io.Writer, dec *Decoder, now time.Time) error {
	for {
		f, err := dec.Next()
		if err == ErrNeedMore {
			return nil
		}
		if err != nil {
			l.dropped(now, err, dec.Last())
			continue
		}
		raw := dec.Last()
		if l.sent.echo(now, raw) {
			// The line handed back what the agent sent: no sign of the
			// meter, and nothing to answer.
			l.update(func(s *LinkStats) { s.Echoes++ })
			l.observe(FrameEvent{Time: now, Dir: DirIn, Frame: f, Raw: raw, Echo: true})
			continue
		}
		l.received(now)
		l.observe(FrameEvent{Time: now, Dir: DirIn, Frame: f, Raw: raw})
		if err := l.handle(ctx, port, f, raw, now); err != nil {
			return err
		}
	}
}

// received notes a valid frame: the link is alive.
func (l *Link) received(now time.Time) {
	l.update(func(s *LinkStats) { s.LastFrameAt = now })
	l.gotFrame = true
	if l.down {
		l.down = false
		l.log.Info("meter link recovered", "down_for", now.Sub(l.downSince).Round(time.Millisecond))
	}
}

// handle answers one frame as docs/meter-protocol.md says. A frame in a
// vendor command word of the dialect is handled as the standard command
// it stands for, and answered in its own word.
func (l *Link) handle(ctx context.Context, port io.Writer, f Frame, raw []byte, now time.Time) error {
	switch std := l.cfg.Dialect.Standard(f.Command); std {
	case CmdSignIn:
		l.update(func(s *LinkStats) { s.Frames.SignIn++ })
		return l.handleSignIn(ctx, port, f, raw, now)
	case CmdSignOut, CmdSignOutResend:
		l.update(func(s *LinkStats) {
			if std == CmdSignOut {
				s.Frames.SignOut++
			} else {
				s.Frames.SignOutResend++
			}
		})
		return l.handleSignOut(ctx, port, f, std, raw, now)
	case CmdHeartbeat:
		if !l.heartbeat(f, raw, now) {
			return nil
		}
		a := HeartbeatAnswer{CountLimitWidth: l.cfg.Dialect.countLimitWidth()}
		return l.send(port, f.Command, a.Append(l.body[:0]), func(s *LinkStats) { s.Answers.Heartbeat++ })
	case CmdSignInRequest, CmdSignOutRequest:
		return l.request(port, f, std, raw, now)
	case CmdStatus:
		r, err := ParseStatusReply(f.Data)
		l.update(func(s *LinkStats) { s.Frames.StatusReply++ })
		if err != nil {
			l.log.Debug("meter status reply unreadable", "err", err)
			return nil
		}
		l.mu.Lock()
		l.ms, l.hasMS = MeterStatus{At: now, Reply: r}, true
		l.mu.Unlock()
	default:
		l.update(func(s *LinkStats) { s.Frames.Unknown++ })
		l.log.Debug("meter frame ignored", "command", CommandName(f.Command), "len", len(f.Data))
	}
	return nil
}

// heartbeat keeps the meter's state and reports whether to answer. An
// unreadable heartbeat is still a sign of life and is answered, but the
// same bytes only once per window: an echoed answer must not be answered.
func (l *Link) heartbeat(f Frame, raw []byte, now time.Time) bool {
	l.update(func(s *LinkStats) { s.Frames.Heartbeat++ })
	h, err := ParseHeartbeat(f.Data)
	if err != nil {
		return l.unreadable(now, f, raw, err)
	}
	st := h.State
	l.mu.Lock()
	l.hb = HeartbeatStatus{At: now, State: st, Hired: st.Hired(), SignedIn: st.SignedIn(), ForcedOn: st.ForcedOn(),
		ForcedOff: st.ForcedOff(), CompanyLicence: h.CompanyLicence, DriverLicence: h.DriverLicence}
	l.hasHB = true
	l.mu.Unlock()
	return true
}

// request answers a sign-in or sign-out request with the driver's
// identity. A request whose flag is not 0x90 asks for nothing the
// standard defines: it is counted and not answered.
func (l *Link) request(port io.Writer, f Frame, std uint16, raw []byte, now time.Time) error {
	l.update(func(s *LinkStats) {
		if std == CmdSignInRequest {
			s.Frames.SignInRequest++
		} else {
			s.Frames.SignOutRequest++
		}
	})
	if len(f.Data) < 1 {
		if l.unreadable(now, f, raw, fmt.Errorf("parse request flag: %w", ErrShortBody)) && l.cfg.Handle != nil {
			return l.sendRequestAnswer(port, f.Command, now)
		}
		return nil
	}
	if flag := f.Data[0]; flag != RequestWanted {
		l.update(func(s *LinkStats) { s.Frames.RequestNotWanted++ })
		if log, unlogged := l.flagBurst.note(now); log {
			l.log.Warn("meter request flag is not 0x90; not answered", "command", CommandName(f.Command),
				"flag", fmt.Sprintf("0x%02X", flag), "unlogged_before", unlogged)
		}
		return nil
	}
	if l.cfg.Handle == nil {
		l.log.Info("monitor mode: request not answered", "command", CommandName(f.Command))
		return nil
	}
	return l.sendRequestAnswer(port, f.Command, now)
}

func (l *Link) sendRequestAnswer(port io.Writer, cmd uint16, now time.Time) error {
	a := l.requestAnswer(BCDTimeOf(now))
	if a.Result != ResultOK {
		if log, unlogged := l.refuseBurst.note(now); log {
			l.log.Warn("meter asks who is driving and no driver is set; refused (set one with 'taxi-agent driver set')",
				"command", CommandName(cmd), "unlogged_before", unlogged)
		}
	}
	return l.send(port, cmd, a.Append(l.body[:0]), func(s *LinkStats) {
		s.Answers.Request++
		if a.Result != ResultOK {
			s.Answers.Refused++
		}
	})
}

// unreadable notes a report too short to read. It returns whether to
// answer it: the first time these bytes come within the window. The
// first of a burst is logged with how many went unlogged before it.
func (l *Link) unreadable(now time.Time, f Frame, raw []byte, err error) bool {
	answer := l.answered.first(now, raw)
	l.update(func(s *LinkStats) {
		s.BadBodies++
		if !answer {
			s.BadBodiesUnanswered++
		}
	})
	if log, unlogged := l.badBurst.note(now); log {
		l.log.Warn("meter report unreadable", "command", CommandName(f.Command), "device", fmt.Sprintf("0x%02X", f.Device),
			"len", len(f.Data), "err", err, "unlogged_before", unlogged)
	}
	return answer
}

// handleSignIn turns a sign-in report into an event. Only 操作结果 0x90 is
// a sign-in; any other result is counted and shown, never handed over.
// The standard defines no answer and the meter does not re-send, so a
// sign-in is answered only in a dialect that asks for it.
func (l *Link) handleSignIn(ctx context.Context, port io.Writer, f Frame, raw []byte, now time.Time) error {
	answer := l.cfg.Dialect.AnswerSignIn && l.cfg.Handle != nil
	ev, err := EventFromFrame(Frame{Device: f.Device, Vendor: f.Vendor, Command: CmdSignIn, Data: f.Data})
	if err != nil {
		if l.unreadable(now, f, raw, err) && answer {
			return l.answer(port, f.Command, ResultFailed)
		}
		return nil
	}
	ev.ReceivedAt = now
	if ev.Result != ResultOK {
		fs := FailedSignIn{At: now, Result: ev.Result, DriverLicence: ev.DriverLicence,
			CompanyLicence: ev.CompanyLicence, MeterTime: ev.MeterTimeBCD.String()}
		l.update(func(s *LinkStats) { s.FailedSignIns++; s.LastFailedSignIn = &fs })
		l.log.Warn("meter reports a failed sign-in; no punch", "result", fmt.Sprintf("0x%02X", ev.Result),
			"driver_license", redact.Licence(ev.DriverLicence), "meter_time", ev.MeterTimeBCD.String())
		if answer {
			return l.answer(port, f.Command, ResultOK) // received; nothing to store
		}
		return nil
	}
	if ev.MeterTimeErr != nil {
		l.log.Warn("meter event with an invalid meter time", "event", ev)
	}
	if l.cfg.Handle == nil {
		l.log.Info("monitor mode: event not stored, not answered", "event", ev)
		return nil
	}
	err = l.cfg.Handle(ctx, ev)
	l.stored(ev, err, "the agent keeps it and stores it as soon as the outbox accepts")
	if !answer {
		return nil
	}
	if err != nil {
		return l.answer(port, f.Command, ResultFailed)
	}
	return l.answer(port, f.Command, ResultOK)
}

// handleSignOut hands a sign-out to the agent and answers 0x90 once it is
// durable, 0xFF if it is not (the meter sends it again later as 0x00F1).
func (l *Link) handleSignOut(ctx context.Context, port io.Writer, f Frame, std uint16, raw []byte, now time.Time) error {
	ev, err := EventFromFrame(Frame{Device: f.Device, Vendor: f.Vendor, Command: std, Data: f.Data})
	if err != nil {
		if l.unreadable(now, f, raw, err) && l.cfg.Handle != nil {
			return l.answer(port, f.Command, ResultFailed)
		}
		return nil
	}
	ev.ReceivedAt = now
	if ev.MeterTimeErr != nil {
		l.log.Warn("meter event with an invalid meter time", "event", ev)
	}
	if l.cfg.Handle == nil {
		l.log.Info("monitor mode: event not stored, not answered", "event", ev)
		return nil
	}
	err = l.cfg.Handle(ctx, ev)
	l.stored(ev, err, "answered 0xFF so the meter re-sends")
	if err != nil {
		return l.answer(port, f.Command, ResultFailed)
	}
	return l.answer(port, f.Command, ResultOK)
}

// Kinds of event whose store failures are logged apart (Link.storeFailing).
const (
	storeSignIn = iota
	storeSignOut
)

// stored logs the outcome of Handle: the first failure of each kind of
// event in a run of failures loudly, the recovery once.
func (l *Link) stored(ev Event, err error, then string) {
	kind := storeSignIn
	if ev.SignOut() {
		kind = storeSignOut
	}
	if err != nil {
		l.update(func(s *LinkStats) { s.HandlerErrors++ })
		if !l.storeFailing[kind] {
			l.storeFailing[kind] = true
			l.log.Error("meter event not stored; "+then, "event", ev, "err", err)
		} else {
			l.log.Debug("meter event still not stored", "event", ev, "err", err)
		}
		return
	}
	if l.storeFailing != [2]bool{} {
		l.storeFailing = [2]bool{}
		l.log.Info("meter events are stored again")
	}
	l.log.Debug("meter event stored", "event", ev)
}

func (l *Link) answer(port io.Writer, cmd uint16, result byte) error {
	return l.send(port, cmd, append(l.body[:0], result), func(s *LinkStats) {
		if result == ResultOK {
			s.Answers.OK++
		} else {
			s.Answers.Failed++
		}
	})
}
