package meter

import (
	"context"
	"io"
	"time"
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
		l.received(now)
		l.observe(FrameEvent{Time: now, Dir: DirIn, Frame: f, Raw: dec.Last()})
		if err := l.handle(ctx, port, f, now); err != nil {
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

// handle answers one frame as PROTOCOL.md says.
func (l *Link) handle(ctx context.Context, port io.Writer, f Frame, now time.Time) error {
	switch f.Command {
	case CmdSignIn, CmdSignOut, CmdSignOutResend:
		l.update(func(s *LinkStats) {
			switch f.Command {
			case CmdSignIn:
				s.Frames.SignIn++
			case CmdSignOut:
				s.Frames.SignOut++
			default:
				s.Frames.SignOutResend++
			}
		})
		return l.handleEvent(ctx, port, f, now)
	case CmdHeartbeat:
		l.heartbeat(f, now)
		return l.send(port, CmdHeartbeat, HeartbeatAnswer{}.Append(l.body[:0]), func(s *LinkStats) { s.Answers.Heartbeat++ })
	case CmdSignInRequest, CmdSignOutRequest:
		l.update(func(s *LinkStats) {
			if f.Command == CmdSignInRequest {
				s.Frames.SignInRequest++
			} else {
				s.Frames.SignOutRequest++
			}
		})
		if l.cfg.Handle == nil {
			l.log.Info("monitor mode: request not answered", "command", CommandName(f.Command))
			return nil
		}
		a := RequestAnswer{SwipeTime: BCDTimeOf(now), Result: ResultOK}
		return l.send(port, f.Command, a.Append(l.body[:0]), func(s *LinkStats) { s.Answers.Request++ })
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

func (l *Link) heartbeat(f Frame, now time.Time) {
	l.update(func(s *LinkStats) { s.Frames.Heartbeat++ })
	h, err := ParseHeartbeat(f.Data)
	if err != nil {
		// Still a sign of life, and still answered; only the state is unknown.
		l.log.Debug("meter heartbeat unreadable", "err", err)
		return
	}
	st := h.State
	l.mu.Lock()
	l.hb = HeartbeatStatus{At: now, State: st, Hired: st.Hired(), SignedIn: st.SignedIn(), ForcedOn: st.ForcedOn(),
		ForcedOff: st.ForcedOff(), CompanyLicence: h.CompanyLicence, DriverLicence: h.DriverLicence}
	l.hasHB = true
	l.mu.Unlock()
}

// handleEvent hands a sign-in or sign-out to the agent and answers 0x90
// once it is durable, 0xFF if it is not.
func (l *Link) handleEvent(ctx context.Context, port io.Writer, f Frame, now time.Time) error {
	ev, err := EventFromFrame(f)
	if err != nil {
		l.update(func(s *LinkStats) { s.BadBodies++ })
		l.log.Warn("meter event unreadable", "command", CommandName(f.Command), "err", err)
		if l.cfg.Handle == nil {
			return nil
		}
		return l.answer(port, f.Command, ResultFailed)
	}
	ev.ReceivedAt = now
	if ev.MeterTimeErr != nil {
		l.log.Warn("meter event with an invalid meter time", "event", ev)
	}
	if l.cfg.Handle == nil {
		l.log.Info("monitor mode: event not stored, not answered", "event", ev)
		return nil
	}
	if err := l.cfg.Handle(ctx, ev); err != nil {
		l.update(func(s *LinkStats) { s.HandlerErrors++ })
		if !l.storeFailing {
			l.storeFailing = true
			l.log.Error("meter event not stored; answered 0xFF so the meter re-sends", "event", ev, "err", err)
		} else {
			l.log.Debug("meter event still not stored", "event", ev, "err", err)
		}
		return l.answer(port, f.Command, ResultFailed)
	}
	if l.storeFailing {
		l.storeFailing = false
		l.log.Info("meter events are stored again")
	}
	l.log.Debug("meter event stored", "event", ev)
	return l.answer(port, f.Command, ResultOK)
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
