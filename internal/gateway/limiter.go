package gateway

import (
	"context"
	"math"

	"golang.org/x/time/rate"
)

// Limiter hands out the fleet's slots to WeChat Pay. Wait blocks until one
// is taken (nil) or ctx ends.
type Limiter interface {
	Wait(ctx context.Context) error
}

// localLimiter is the in-process token bucket: perSecond tokens a second,
// a burst of one, so that no one-second window sees more than perSecond
// punches from this gateway.
type localLimiter struct{ l *rate.Limiter }

// NewLocalLimiter is a token bucket at perSecond with a burst of one.
func NewLocalLimiter(perSecond float64) Limiter {
	return localLimiter{rate.NewLimiter(rate.Limit(perSecond), 1)}
}

func (l localLimiter) Wait(ctx context.Context) error { return l.l.Wait(ctx) }

// slotSeconds is the interval between two slots at perSecond.
func slotSeconds(perSecond float64) float64 {
	if perSecond <= 0 {
		return math.Inf(1)
	}
	return 1 / perSecond
}
