package harness

import (
	"fmt"
	"time"

	"taxi-agent/internal/punchsim"
	"taxi-agent/internal/stamp"
)

// Tally compares the events the meter saw acknowledged with the punches
// the fake endpoint accepted.
type Tally struct {
	Acked      int     // events the meter was answered 0x90 for
	Delivered  int     // of those, accepted at least once
	Lost       []Acked // acknowledged and never accepted
	Duplicates int     // accepted punches beyond the first of each event
	// Unacked counts events accepted that the meter never saw
	// acknowledged: stored, then the agent stopped or was killed before
	// its answer reached the meter. Delivering them is right.
	Unacked int
	// OutOfOrder describes each acknowledged event first delivered before
	// one acknowledged earlier.
	OutOfOrder []string
	// BadFields describes each accepted punch whose fields are wrong for
	// its event.
	BadFields []string
}

// Reconcile matches acked events to accepted punches by driver licence
// and event type.
func Reconcile(acked []Acked, accepted []punchsim.Punch) Tally {
	t := Tally{Acked: len(acked)}
	byKey := map[string][]int{} // positions in accepted
	for i, p := range accepted {
		k := PunchKey(p)
		if len(byKey[k]) > 0 {
			t.Duplicates++
		}
		byKey[k] = append(byKey[k], i)
	}
	ackedKeys := map[string]bool{}
	last, lastKey := -1, ""
	for _, a := range acked {
		k := a.Key()
		ackedKeys[k] = true
		at := byKey[k]
		if len(at) == 0 {
			t.Lost = append(t.Lost, a)
			continue
		}
		t.Delivered++
		if i := at[0]; i < last {
			t.OutOfOrder = append(t.OutOfOrder, fmt.Sprintf("%s delivered at #%d, before %s at #%d", k, i, lastKey, last))
		}
		last, lastKey = at[0], k
		for _, j := range at {
			for _, problem := range CheckFields(accepted[j], a) {
				t.BadFields = append(t.BadFields, fmt.Sprintf("punch #%d (%s): %s", j, k, problem))
			}
		}
	}
	for k := range byKey {
		if !ackedKeys[k] {
			t.Unacked++
		}
	}
	return t
}

// OK reports whether nothing was lost, nothing went out of order and every
// field was right. Duplicates are judged by the caller: none are allowed
// without kills.
func (t Tally) OK() bool {
	return len(t.Lost) == 0 && len(t.OutOfOrder) == 0 && len(t.BadFields) == 0
}

// String summarises the tally, naming the first few problems.
func (t Tally) String() string {
	s := fmt.Sprintf("acknowledged %d, delivered %d, lost %d, duplicates %d, delivered unacknowledged %d, out of order %d, bad fields %d",
		t.Acked, t.Delivered, len(t.Lost), t.Duplicates, t.Unacked, len(t.OutOfOrder), len(t.BadFields))
	for i, a := range t.Lost {
		if i == 5 {
			s += fmt.Sprintf("\n  … %d more lost", len(t.Lost)-i)
			break
		}
		s += fmt.Sprintf("\n  lost: %s acknowledged at %s after %d sends", a.Key(), a.Answered.Format(time.StampMilli), a.Sends)
	}
	for i, o := range append(t.OutOfOrder, t.BadFields...) {
		if i == 10 {
			s += "\n  …"
			break
		}
		s += "\n  " + o
	}
	return s
}

// CheckFields lists what is wrong with punch p as the delivery of event a:
// the configured plate and region, a's type and licence, and an
// event_time in the API's layout that is the receipt time (between the
// meter's send and its 0x90), or the meter's own sign-out time for a
// re-sent sign-out (0x00F1).
func CheckFields(p punchsim.Punch, a Acked) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if p.PlateNumber != Plate {
		bad("plate_number %q, want %q", p.PlateNumber, Plate)
	}
	if p.RegionID != RegionID {
		bad("region_id %d, want %d", p.RegionID, RegionID)
	}
	if p.EventType != a.Type {
		bad("event_type %q, want %q", p.EventType, a.Type)
	}
	if p.DriverLicense != a.Licence {
		bad("driver_license %q, want %q", p.DriverLicense, a.Licence)
	}
	if !punchsim.EventTimePattern.MatchString(p.EventTime) {
		bad("event_time %q is not in the layout 2006-01-02T15:04:05.000+08:00", p.EventTime)
		return problems
	}
	at, err := time.Parse(stamp.Layout, p.EventTime)
	if err != nil {
		bad("event_time %q: %v", p.EventTime, err)
		return problems
	}
	if a.Resend {
		if want := stamp.Format(a.MeterTime.Truncate(time.Minute)); p.EventTime != want {
			bad("event_time %s of a re-sent sign-out, want the meter's sign-out time %s", p.EventTime, want)
		}
		return problems
	}
	if a.ResentLater && p.EventTime == stamp.Format(a.MeterTime.Truncate(time.Minute)) {
		return problems // the agent had not stored the 0x00E4: the 0x00F1's meter time
	}
	if from := a.Sent.Truncate(time.Millisecond); at.Before(from) || at.After(a.Answered) {
		bad("event_time %s is not the receipt time: the frame was sent at %s and answered at %s",
			p.EventTime, stamp.Format(a.Sent), stamp.Format(a.Answered))
	}
	return problems
}
