package meter

import "fmt"

// Dialect is how one make of meter speaks the protocol where deployed
// meters differ from the standard (docs/meter-protocol.md, "Dialects").
// The zero value is the standard.
type Dialect struct {
	// SignIn, SignOut and SignOutResend are the command words the meter
	// uses for 0x00E1, 0x00E4 and 0x00F1; 0 means the standard word. Some
	// makers send 0xF0E1, 0xF0E4 and 0xF0F1 with the standard bodies. The
	// standard words are understood as well; answers carry the word of the
	// frame they answer.
	SignIn, SignOut, SignOutResend uint16
	// AnswerSignIn answers each sign-in (0x00E1) with a result byte: 0x90
	// once it is durable, 0xFF before. The standard defines no answer and
	// meters do not re-send a sign-in; some meters re-send it until
	// answered and need this.
	AnswerSignIn bool
	// CountLimitWidth is the width in bytes of the count limit in the
	// heartbeat answer: 1 (the standard, 10-byte answer; 0 means 1) or 2
	// (an 11-byte answer).
	CountLimitWidth int
}

// Validate reports the first setting that cannot work: a width other than
// 1 or 2, a command word that is another standard command, or one word
// used for two messages.
func (d Dialect) Validate() error {
	if w := d.CountLimitWidth; w != 0 && w != 1 && w != 2 {
		return fmt.Errorf("count limit width %d: must be 1 or 2", w)
	}
	seen := map[uint16]string{}
	for _, c := range []struct {
		name     string
		word     uint16
		standard uint16
	}{{"sign-in", d.SignIn, CmdSignIn}, {"sign-out", d.SignOut, CmdSignOut}, {"re-sent sign-out", d.SignOutResend, CmdSignOutResend}} {
		if c.word == 0 || c.word == c.standard {
			continue
		}
		if knownCommand(c.word) {
			return fmt.Errorf("%s command 0x%04X is the standard's %s", c.name, c.word, CommandName(c.word))
		}
		if other, ok := seen[c.word]; ok {
			return fmt.Errorf("%s command 0x%04X is also the %s command", c.name, c.word, other)
		}
		seen[c.word] = c.name
	}
	return nil
}

// Standard returns the standard command a received command word means in
// this dialect: a configured vendor word maps to its standard meaning, any
// other word is returned as it is.
func (d Dialect) Standard(cmd uint16) uint16 {
	switch {
	case cmd == 0:
		return cmd
	case cmd == d.SignIn:
		return CmdSignIn
	case cmd == d.SignOut:
		return CmdSignOut
	case cmd == d.SignOutResend:
		return CmdSignOutResend
	}
	return cmd
}

// Wire returns the command word this dialect's meter uses for the standard
// command std (the simulator's side of Standard).
func (d Dialect) Wire(std uint16) uint16 {
	switch {
	case std == CmdSignIn && d.SignIn != 0:
		return d.SignIn
	case std == CmdSignOut && d.SignOut != 0:
		return d.SignOut
	case std == CmdSignOutResend && d.SignOutResend != 0:
		return d.SignOutResend
	}
	return std
}

func (d Dialect) countLimitWidth() int {
	if d.CountLimitWidth == 2 {
		return 2
	}
	return 1
}

// knownCommand reports whether cmd is a standard command the link knows.
func knownCommand(cmd uint16) bool {
	switch cmd {
	case CmdStatus, CmdSignInRequest, CmdSignIn, CmdSignOutRequest, CmdSignOut, CmdTrip, CmdHeartbeat, CmdSignOutResend, CmdTripResend:
		return true
	}
	return false
}
