package uploader

import (
	"time"

	"taxi-agent/internal/outbox"
)

// fullJitter is capped exponential backoff with full jitter: a uniform
// wait in (0, min(hi, lo·2^(n-1))] before retry n (n ≥ 1), for a uniform
// r in [0, 1). Spreading over the whole interval, not around its end, is
// what keeps a fleet that failed at the same instant from retrying in
// step.
func fullJitter(lo, hi time.Duration, n int, r float64) time.Duration {
	ceiling := hi
	if n < 1 {
		n = 1
	}
	if n-1 < 62 {
		if d := lo << (n - 1); d > 0 && d < hi && d>>(n-1) == lo {
			ceiling = d
		}
	}
	if ceiling <= 0 {
		return 0
	}
	// (1-r) is in (0, 1]: never a zero wait.
	return max(time.Duration((1-r)*float64(ceiling)), 1)
}

// schedule decides when a failed event is due again.
type schedule struct {
	min, max      time.Duration // drain loop backoff
	held          time.Duration // retry interval for held conditions
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
		return at.Add(min(e.RetryAfter, s.retryAfterCap) + fullJitter(throttle, throttle, 1, r))
	case e.Kind == KindAbandoned:
		// Cut off by shutdown: due at once when the agent starts again.
		return at
	case e.Held() && e.Resigned:
		// The authenticator now signs with WeChat Pay's time: try again
		// soon, not after HeldRetry.
		return at.Add(s.min)
	case e.Held():
		// Slow, with ±10% so that a fleet with a bad key spreads out.
		return at.Add(s.held - s.held/10 + time.Duration(r*float64(s.held/5)))
	}
	wait := fullJitter(s.min, s.max, rec.Attempts+1, r)
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
	return max(s.max+s.retryAfterCap, s.held+s.held/10, 3*s.max/2)
}
