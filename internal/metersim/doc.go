// Package metersim simulates a taximeter on the far end of a serial line
// (in practice the master side of a pseudo-terminal, see OpenPTY), for
// tests, end-to-end runs and `agent demo`.
//
// A Meter sends frames built with the meter package's encoder the way a
// real meter does: a sign-in, sign-out or request is re-sent after an
// answer timeout, and after a 0xFF answer, until the agent answers 0x90
// (or Options.MaxSends is reached). It answers the agent's status queries
// on its own. Between frames it can inject line faults: random noise,
// frames with a broken check byte or end marker, and truncated frames.
//
//	p, _ := metersim.OpenPTY()                  // the agent opens p.Path
//	m := metersim.New(p.Master, metersim.Options{AnswerTimeout: 500 * time.Millisecond})
//	shift := metersim.Shift{Driver: "42108319880906011X", Plate: "B12345", Trips: 1234, At: t}
//	res, err := m.SignIn(ctx, shift)            // res.Answer == 0x90, res.Sends == 1
//	res, err = m.SignOut(ctx, shift, metersim.Resend(true)) // as 0x00F1
package metersim
