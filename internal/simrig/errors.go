package simrig

import "errors"

// Sentinel errors of the package. Compare with errors.Is.
var (
	// ErrUnknownAction: a control action that is not one of Actions.
	ErrUnknownAction = errors.New("unknown action")
	// ErrRefused: the bench refused an action (sign-in while a driver is
	// signed in, sign-out with none); the message says why.
	ErrRefused = errors.New("refused by the bench")
	// ErrNoBench: nothing listens on the control socket of the directory.
	ErrNoBench = errors.New("no bench running")
)
