//go:build !powercut_mutant_ackfirst

package daemon

import (
	"context"

	"taxi-agent/internal/meter"
)

// meterHandler is what the meter link calls for each event: handle, which
// returns once the record is durable. The power-cut suite's mutant (build
// tag powercut_mutant_ackfirst) answers first instead.
func (d *Daemon) meterHandler() func(context.Context, meter.Event) error { return d.handle }
