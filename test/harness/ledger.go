package harness

import (
	"context"
	"fmt"
	"sync"
	"time"

	"taxi-agent/internal/meter"
	"taxi-agent/internal/metersim"
	"taxi-agent/internal/outbox"
	"taxi-agent/internal/punch"
	"taxi-agent/internal/punchsim"
)

// Licence returns the driver licence (从业资格证号, 19 characters) of
// driver n: every shift of a suite gets its own, so that a punch names
// the event it delivers by licence and type.
func Licence(n int) string { return fmt.Sprintf("44030019800101%05d", n%100000) }

// ShiftOf is driver n's shift, signed in at at (minute precision, as the
// meter keeps time), with n as its trip count so that identities differ.
// Its sign-out time is at as well: set End for another. A meter's clock
// agrees with the agent's, so suites pass times near now: an
// unsynchronised agent takes the meter's time for an event whose meter
// time is more than an hour from its clock (docs/meter-protocol.md, "Time").
func ShiftOf(n int, at time.Time) metersim.Shift {
	at = at.Truncate(time.Minute)
	return metersim.Shift{Driver: Licence(n), Trips: uint32(1000 + n), At: at, End: at,
		ShiftTrips: 12, Mileage: 1534, Fare: 2385}
}

// SignInGrace is how soon after a standard meter reported a sign-in the
// agent has it: a sign-in is not answered (docs/meter-protocol.md), so
// the ledger takes it as promised this long after its send. The crash
// suite holds the agent to it: a sign-in sent more than SignInGrace
// before a kill must survive.
const SignInGrace = time.Second

// Acked is an event the agent promised to deliver: a sign-out the meter
// was answered 0x90 for, or a sign-in a standard meter reported (it gets
// no answer).
type Acked struct {
	Type    string // punch.SignIn or punch.SignOut
	Licence string // the licence its punch must carry
	// Sent and Answered bracket the exchange on the wall clock: the
	// event's receipt time lies between them. For a sign-in that is not
	// answered, Answered is its report's send plus SignInGrace.
	Sent, Answered time.Time
	// Reported is when a sign-in was written to the line (zero for
	// sign-outs).
	Reported time.Time
	// MeterTime is the meter's own time of the event (sign-out time for a
	// sign-out).
	MeterTime time.Time
	Resend    bool // sent as 0x00F1
	// ResentLater is set on a sign-out reported as 0x00E4 and, unanswered,
	// again as 0x00F1: its event_time is the receipt of the 0x00E4 if the
	// agent stored that one, or else the meter's sign-out time.
	ResentLater bool
	Sends       int // frames sent until 0x90
	Refusals    int // 0xFF answers before the 0x90
}

// Key names the event as its punch does.
func (a Acked) Key() string { return a.Type + "|" + a.Licence }

// PunchKey names the event a punch delivers.
func PunchKey(p punchsim.Punch) string { return p.EventType + "|" + p.DriverLicense }

// RecordKey names the event of an outbox record.
func RecordKey(r outbox.Record) string { return r.Event.Type + "|" + r.Event.DriverLicense }

// Ledger keeps the events the meter saw acknowledged, in order. It is
// safe for concurrent use.
type Ledger struct {
	mu    sync.Mutex
	acked []Acked
}

// Add appends an acknowledged event.
func (l *Ledger) Add(a Acked) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.acked = append(l.acked, a)
}

// Acked returns the acknowledged events in order.
func (l *Ledger) Acked() []Acked {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Acked(nil), l.acked...)
}

// Len is how many events were acknowledged.
func (l *Ledger) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// SignIn makes the meter sign s's driver in (the request, then the
// report; a legacy meter re-sends the report until answered 0x90), and
// records it. The punch must carry the licence the meter signed in with:
// the terminal's, with meter.identity = "terminal".
func (l *Ledger) SignIn(ctx context.Context, m *metersim.Meter, s metersim.Shift) (Acked, error) {
	a := Acked{Type: punch.SignIn, Licence: s.Driver, MeterTime: s.At, Sent: time.Now()}
	res, err := m.SignIn(ctx, s)
	if err == nil {
		a.Licence, a.Reported = res.Identity.DriverLicence, res.SentAt
	}
	return l.finish(a, res, err)
}

// SignOut makes the meter report s's sign-out, as 0x00F1 if resend is
// set, until it is answered 0x90, and records it. An empty s.Driver is a
// meter that leaves the licence out: the punch must then carry
// openLicence, that of the open sign-in.
func (l *Ledger) SignOut(ctx context.Context, m *metersim.Meter, s metersim.Shift, openLicence string, resend bool) (Acked, error) {
	lic := s.Driver
	if lic == "" {
		lic = openLicence
	}
	a := Acked{Type: punch.SignOut, Licence: lic, MeterTime: s.EndTime(), Resend: resend, Sent: time.Now()}
	res, err := m.SignOut(ctx, s, metersim.Resend(resend))
	a.ResentLater = !resend && res.Command == meter.CmdSignOutResend
	return l.finish(a, res, err)
}

func (l *Ledger) finish(a Acked, res metersim.Result, err error) (Acked, error) {
	a.Answered = time.Now()
	if !a.Reported.IsZero() && len(res.History) == 0 {
		a.Answered = a.Reported.Add(SignInGrace) // a standard sign-in: no answer
	}
	a.Sends = res.Sends
	for _, b := range res.History {
		if b != 0x90 {
			a.Refusals++
		}
	}
	if err != nil {
		return a, fmt.Errorf("%s %s: %w", a.Type, a.Licence, err)
	}
	l.Add(a)
	return a, nil
}
