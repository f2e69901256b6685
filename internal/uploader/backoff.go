package uploader

import (
	"time"

	"taxi-agent/internal/backoff"
	"taxi-agent/internal/outbox"
)

// schedule decides when a failed event is due again.
type schedule struct {
	retry         backoff.Policy // drain loop backoff, full jitter
	held          time.Duration  // retry interval for held conditions
	retryAfterCap time.Duration
}

// next returns the time of the next attempt after a failure at `at`; the
// record's Attempts does not yet count this failure. throttle is the pace
// (see pace) after a 429: the spread of its retry.
func (s schedule) next(rec outbox.Record, e *DeliveryError, at time.Time, r float64, throttle time.Duration) time.Time {
	switch {
	case e.Kind == KindThrottled:
		// The server's wait, capped, then spread over the pace; not the
		// record's backoff, which an outage may have pushed to the cap.
		return at.Add(min(e.RetryAfter, s.retryAfterCap) + backoff.Policy{Min: throttle, Max: throttle}.Delay(1, r))
	case e.Kind == KindAbandoned:
		// Cut off by shutdown: due at once when the agent starts again.
		return at
	case e.Held() && e.Resigned:
		// The authenticator now signs with WeChat Pay's time: try again
		// soon, not after HeldRetry.
		return at.Add(s.retry.Min)
	case e.Held():
		// Slow, with ±10% so that a fleet with a bad key spreads out.
		return at.Add(s.held - s.held/10 + time.Duration(r*float64(s.held/5)))
	}
	wait := s.retry.Delay(rec.Attempts+1, r)
	if e.RetryAfter > 0 {
		// Honour the server's wait, capped, and add the jittered backoff
		// on top so that a fleet told the same Retry-After does not come
		// back in step.
		wait += min(e.RetryAfter, s.retryAfterCap)
	}
	return at.Add(wait)
}

// longest is the longest wait next can schedule.
func (s schedule) longest() time.Duration {
	return max(s.retry.Max+s.retryAfterCap, s.held+s.held/10, 3*s.retry.Max/2)
}
