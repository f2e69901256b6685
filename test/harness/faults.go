package harness

import (
	"slices"
	"time"

	"taxi-agent/internal/testsupport"

	"taxi-agent/internal/punchsim"
)

// FaultPhase is one misbehaviour of the endpoint in the fault suite:
// faults for its next valid requests, or an outage.
type FaultPhase struct {
	Name   string
	Faults []punchsim.Fault
	Outage time.Duration
}

// FaultStall is longer than the agent's attempt timeout in NewConfig (2 s):
// the agent gives up and retries, the fake never answers.
const FaultStall = 10 * time.Second

// FaultPhases is every fault class the agent must come through with each
// event delivered once and in order, in direct mode and through
// taxi-gateway alike.
func FaultPhases() []FaultPhase {
	f := func(k punchsim.FaultKind, n int) []punchsim.Fault {
		fs := make([]punchsim.Fault, n)
		for i := range fs {
			fs[i] = punchsim.Fault{Kind: k}
		}
		return fs
	}
	return []FaultPhase{
		{Name: "outage", Outage: 1500 * time.Millisecond},
		{Name: "500s", Faults: f(punchsim.ServerError, 4)},
		{Name: "429 with Retry-After", Faults: []punchsim.Fault{
			{Kind: punchsim.RateLimited, RetryAfter: "1"}, {Kind: punchsim.RateLimited, RetryAfter: "1"}}},
		{Name: "503 with Retry-After", Faults: []punchsim.Fault{{Kind: punchsim.Unavailable, RetryAfter: "1"}}},
		{Name: "resets", Faults: f(punchsim.Reset, 3)},
		{Name: "10 s stalls", Faults: []punchsim.Fault{{Kind: punchsim.Stall, Delay: FaultStall}, {Kind: punchsim.Stall, Delay: FaultStall}}},
		{Name: "unsigned 204", Faults: f(punchsim.Unsigned, 2)},
		{Name: "forged 204", Faults: f(punchsim.BadSignature, 2)},
		{Name: "204 signed 10 minutes ago", Faults: f(punchsim.OldTimestamp, 1)},
		{Name: "SIGNTEST probe", Faults: f(punchsim.SignTest, 2)},
		{Name: "all at once", Faults: []punchsim.Fault{
			{Kind: punchsim.Reset}, {Kind: punchsim.SignTest}, {Kind: punchsim.ServerError},
			{Kind: punchsim.BadSignature}, {Kind: punchsim.RateLimited, RetryAfter: "1"}, {Kind: punchsim.Unsigned}}},
	}
}

// UnverifiedFaults are the faults that answer 204 without a valid
// signature.
var UnverifiedFaults = map[punchsim.FaultKind]bool{
	punchsim.Unsigned: true, punchsim.BadSignature: true, punchsim.OldTimestamp: true, punchsim.SignTest: true,
}

// UnverifiedNotResent returns the exchanges, in order, that were answered
// with an unverified 204 (UnverifiedFaults) and whose punch was never sent
// again until accepted: a terminal that counted such an answer as a
// delivery.
func UnverifiedNotResent(xs []punchsim.Exchange) []punchsim.Exchange {
	var out []punchsim.Exchange
	for i, x := range xs {
		if !UnverifiedFaults[x.Fault] || x.Punch == nil {
			continue
		}
		if !slices.ContainsFunc(xs[i+1:], func(y punchsim.Exchange) bool { return y.Accepted && *y.Punch == *x.Punch }) {
			out = append(out, x)
		}
	}
	return out
}

// RunFaultPhase applies p to the rig's endpoint (an outage, or its faults
// until all are taken) and waits for a punch accepted after it, the sign
// that the agent recovered. It returns how long that took.
func (r *Rig) RunFaultPhase(p FaultPhase) time.Duration {
	t := r.TB
	t.Helper()
	start := time.Now()
	before := len(r.Endpoint.Accepted())
	if p.Outage > 0 {
		if err := r.Endpoint.Stop(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(p.Outage)
		if err := r.Endpoint.Start(); err != nil {
			t.Fatal(err)
		}
	} else {
		r.Endpoint.Inject(p.Faults...)
		testsupport.WaitFor(t, time.Minute, p.Name+": faults taken", func() bool { return r.Endpoint.Pending() == 0 })
	}
	testsupport.WaitFor(t, time.Minute, p.Name+": a delivery after", func() bool { return len(r.Endpoint.Accepted()) > before })
	return time.Since(start)
}
