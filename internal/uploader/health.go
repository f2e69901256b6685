package uploader

import (
	"time"

	"taxi-agent/internal/outbox"
	"taxi-agent/internal/redact"
)

// health remembers which conditions have been logged, so that a repeated
// failure is logged once and its recovery once.
type health struct {
	failing       bool
	kind          Kind
	status        int
	since         time.Time
	failures      int
	held          bool
	clockWait     bool
	storeFailures int
}

func eventAttrs(rec outbox.Record) []any {
	return []any{
		"event_id", rec.ID,
		"event_type", rec.Event.Type,
		"driver_license", redact.LicenceValue(rec.Event.DriverLicense),
	}
}

func errorAttrs(e *DeliveryError) []any {
	a := []any{"kind", e.Kind.String()}
	if e.Status != 0 {
		a = append(a, "status", e.Status)
	}
	if e.Code != "" {
		a = append(a, "code", e.Code, "message", e.Message)
	}
	if e.RequestID != "" {
		a = append(a, "request_id", e.RequestID)
	}
	if e.Err != nil {
		a = append(a, "err", e.Err.Error())
	}
	return a
}

// delivered notes a verified delivery.
func (u *Uploader) delivered(rec outbox.Record, at time.Time) {
	h := &u.health
	if h.held {
		u.log.Info("held condition cleared: WeChat Pay accepts the terminal again")
	}
	if h.failing {
		u.log.Info("punch delivery recovered", "failed_attempts", h.failures, "failing_since", h.since)
	}
	*h = health{storeFailures: h.storeFailures}
	u.update(func(st *Status) {
		st.LastDelivery, st.LastDeliveredID = at, rec.ID
		st.Delivered++
		st.ConsecutiveFailures = 0
		st.Held, st.HeldAnswer = "", nil
		st.NextAttempt = time.Time{}
	})
	u.log.Info("punch delivered", append(eventAttrs(rec), "attempts", rec.Attempts+1)...)
}

// failed notes an attempt that will be retried (held included).
func (u *Uploader) failed(rec outbox.Record, e *DeliveryError, ae outbox.AttemptError, next time.Time) {
	u.update(func(st *Status) {
		st.LastError = &LastError{AttemptError: ae, Kind: e.Kind.String(), EventID: rec.ID}
		st.ConsecutiveFailures++
		st.Retried++
		switch e.Kind {
		case KindUnverified:
			st.UnverifiedAnswers++
		case KindThrottled:
			st.Throttled++
		}
		st.NextAttempt = next
		if e.Held() {
			since := ae.At
			if st.HeldAnswer != nil && st.Held != "" {
				since = st.HeldAnswer.Since
			}
			st.Held = e.heldText()
			st.HeldAnswer = &HeldAnswer{Status: e.Status, Code: e.Code, Message: e.Message, RequestID: e.RequestID, Since: since, Streak: e.Streak}
		} else if e.Kind != KindAbandoned {
			st.Held, st.HeldAnswer = "", nil
		}
	})
	h := &u.health
	if e.Kind == KindAbandoned {
		u.log.Info("in-flight punch abandoned at shutdown; it is due again at start", eventAttrs(rec)...)
		return
	}
	if e.Held() {
		if !h.held {
			u.log.Error("punch delivery held: "+e.heldText(), append(eventAttrs(rec), errorAttrs(e)...)...)
		}
		h.held = true
	} else if h.held {
		u.log.Info("held condition cleared: WeChat Pay accepts the terminal again")
		h.held = false
	}
	attrs := append(append(eventAttrs(rec), errorAttrs(e)...), "attempts", rec.Attempts+1, "next_attempt", next)
	switch {
	case !h.failing:
		h.failing, h.since, h.failures = true, ae.At, 0
		if !e.Held() {
			u.log.Warn("punch delivery failing; retrying with backoff", attrs...)
		}
	case h.kind != e.Kind || h.status != e.Status:
		if !e.Held() {
			u.log.Warn("punch delivery still failing, differently", attrs...)
		}
	default:
		u.log.Debug("punch delivery failed again", attrs...)
	}
	h.kind, h.status = e.Kind, e.Status
	h.failures++
}

// deadLettered notes an event WeChat Pay refused for good.
func (u *Uploader) deadLettered(rec outbox.Record, e *DeliveryError, ae outbox.AttemptError) {
	u.update(func(st *Status) {
		st.LastError = &LastError{AttemptError: ae, Kind: e.Kind.String(), EventID: rec.ID}
		st.ConsecutiveFailures++
		st.DeadLettered++
		st.Held, st.HeldAnswer = "", nil
	})
	if u.health.held {
		u.log.Info("held condition cleared: WeChat Pay accepts the terminal again")
		u.health.held = false
	}
	u.log.Warn("punch dead-lettered: WeChat Pay refused it", append(eventAttrs(rec), errorAttrs(e)...)...)
}

// clockWait notes whether the head waits for a trusted clock.
func (u *Uploader) clockWait(rec outbox.Record, waiting bool) {
	u.update(func(st *Status) {
		st.WaitingForClock = waiting
		st.HeadID = rec.ID
		if waiting {
			st.NextAttempt = time.Time{}
		}
	})
	switch {
	case waiting && !u.health.clockWait:
		u.log.Warn("head punch waits for a trusted clock before it can be stamped and sent", eventAttrs(rec)...)
	case !waiting && u.health.clockWait:
		u.log.Info("clock trusted: held punch stamped", eventAttrs(rec)...)
	}
	u.health.clockWait = waiting
}

// storeFailed notes an outbox error and returns how long to wait before
// trying the outbox again.
func (u *Uploader) storeFailed(op string, err error) time.Duration {
	h := &u.health
	h.storeFailures++
	if h.storeFailures == 1 {
		u.log.Error("outbox error; the uploader will retry", "op", op, "err", err)
	}
	u.update(func(st *Status) { st.StoreError = op + ": " + err.Error() })
	return u.sched.retry.Delay(h.storeFailures, u.rand())
}

// storeRecovered notes that the outbox answered again.
func (u *Uploader) storeRecovered() {
	if u.health.storeFailures == 0 {
		return
	}
	u.log.Info("outbox recovered", "failures", u.health.storeFailures)
	u.health.storeFailures = 0
	u.update(func(st *Status) { st.StoreError = "" })
}
