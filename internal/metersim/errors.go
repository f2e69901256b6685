package metersim

import "errors"

var (
	// ErrNoAnswer means the agent did not answer the last send within the
	// answer timeout, and the meter gave up (Options.MaxSends).
	ErrNoAnswer = errors.New("no answer from the agent")
	// ErrRefused means the agent's last answer was not 0x90, and the meter
	// gave up (Options.MaxSends).
	ErrRefused = errors.New("agent refused")
	// ErrLineClosed means the line was closed or failed while waiting.
	ErrLineClosed = errors.New("line closed")
)
