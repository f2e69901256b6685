//go:build powercut_mutant_ackfirst

package daemon

import (
	"context"

	"taxi-agent/internal/meter"
)

// meterHandler: a deliberately broken build for the power-cut suite
// (test/powercut), which must report lost events: the meter is answered
// 0x90 before the commit. Never shipped.
func (d *Daemon) meterHandler() func(context.Context, meter.Event) error {
	return func(ctx context.Context, ev meter.Event) error {
		go func() { _ = d.handle(context.WithoutCancel(ctx), ev) }()
		return nil
	}
}
