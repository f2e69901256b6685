package harness

import (
	"context"
	"math/rand/v2"
	"time"

	"taxi-agent/internal/metersim"
)

// Shifts drives a meter through one shift after another in a goroutine:
// a sign-in, a sign-out, a random pause before each, every event recorded
// in a Ledger once acknowledged.
type Shifts struct {
	quit   chan struct{}
	done   chan error
	failed chan struct{} // closed when the meter stopped on an error
	err    error         // that error, set before failed is closed
}

// ShiftsOptions tune Shifts.
type ShiftsOptions struct {
	First    int           // number of the first driver (see Licence)
	MaxPause time.Duration // pauses are uniform in [0, MaxPause)
	Seed     uint64
}

// StartShifts starts reporting shifts on m until Stop or until ctx ends.
func StartShifts(ctx context.Context, m *metersim.Meter, led *Ledger, o ShiftsOptions) *Shifts {
	s := &Shifts{quit: make(chan struct{}), done: make(chan error, 1), failed: make(chan struct{})}
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x5bd1e995))
	go func() {
		for n := o.First; ; n++ {
			// The meter's clock agrees with the agent's: its times are now.
			shift := ShiftOf(n, time.Now())
			for _, signIn := range []bool{true, false} {
				var pause time.Duration
				if o.MaxPause > 0 {
					pause = time.Duration(rng.Int64N(int64(o.MaxPause)))
				}
				select {
				case <-s.quit:
					s.done <- nil
					return
				case <-time.After(pause):
				}
				var err error
				if signIn {
					_, err = led.SignIn(ctx, m, shift)
				} else {
					shift.End = time.Now().Truncate(time.Minute)
					_, err = led.SignOut(ctx, m, shift, "", false)
				}
				if err != nil {
					s.err = err
					close(s.failed)
					s.done <- err
					return
				}
			}
		}
	}()
	return s
}

// Stop lets the event in progress finish, acknowledged, and stops. It
// returns the error that stopped the meter earlier, if one did.
func (s *Shifts) Stop() error {
	close(s.quit)
	return <-s.done
}

// Failed returns the error that stopped the meter early, or nil while it
// runs: a test waiting for the agent can fail at once instead of timing out.
func (s *Shifts) Failed() error {
	select {
	case <-s.failed:
		return s.err
	default:
		return nil
	}
}
