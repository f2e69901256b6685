// Package metersim simulates a taximeter on the far end of a serial line
// (in practice the master side of a pseudo-terminal, see OpenPTY), for
// tests, end-to-end runs and `agent demo`.
//
// A Meter speaks the shift handshake the way a standard meter does
// (docs/meter-protocol.md): to sign a driver in it asks the terminal who
// is driving (0x00E0) and waits for the answer, signs in with the identity
// it was given or gives up when refused, and reports the sign-in (0x00E1)
// once, with its result byte, expecting no answer. A sign-out is asked for
// (0x00E3) and reported (0x00E4); a report the agent does not answer 0x90
// is sent again as 0x00F1 until it is. A legacy meter
// (Options.Dialect.AnswerSignIn) re-sends the sign-in until answered
// instead. Options.Dialect also sets vendor command words, and
// Options.Echo makes the line hand back every byte the agent sends.
//
// The meter answers the agent's status queries on its own. Between frames
// it can inject line faults: random noise, frames with a broken check byte
// or end marker, and truncated frames.
//
//	p, _ := metersim.OpenPTY()                  // the agent opens p.Path
//	m := metersim.New(p.Master, metersim.Options{AnswerTimeout: 500 * time.Millisecond})
//	shift := metersim.Shift{Driver: "42108319880906011X", Plate: "B12345", Trips: 1234, At: t}
//	res, err := m.SignIn(ctx, shift)            // res.OK(), res.Identity: who signed in
//	res, err = m.SignOut(ctx, shift)            // res.Answer == 0x90 once durable
//	res, err = m.SignOut(ctx, shift, metersim.Resend(true)) // as 0x00F1
package metersim
