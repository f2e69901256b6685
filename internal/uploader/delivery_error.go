package uploader

import (
	"fmt"
	"strings"
	"time"

	"taxi-agent/internal/outbox"
	"taxi-agent/internal/wechatpay"
)

// Kind classifies a failed delivery attempt.
type Kind int

// The kinds of failed attempt, by what the drain loop does about them.
const (
	// KindNetwork is a transport failure: refused, reset, timed out, TLS.
	KindNetwork Kind = iota + 1
	// KindServer is a 5xx (or another status that is not 2xx/3xx/4xx).
	KindServer
	// KindThrottled is a 429.
	KindThrottled
	// KindUnverified is a 2xx whose signature did not verify.
	KindUnverified
	// KindHeld is 401, 403, 404, a redirect or a local signing failure:
	// the configuration, key or clock is wrong for every event.
	KindHeld
	// KindRejected is any other 4xx: this event is bad.
	KindRejected
	// KindAbandoned is an attempt cut off at shutdown.
	KindAbandoned
)

var kindNames = map[Kind]string{
	KindNetwork: "network", KindServer: "server", KindThrottled: "throttled",
	KindUnverified: "unverified", KindHeld: "held", KindRejected: "rejected",
	KindAbandoned: "abandoned",
}

// String names the kind for status and logs.
func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// DeliveryError is why one attempt did not deliver an event. Callers
// classify it with Retryable, Held and Rejected, or errors.As and Kind.
type DeliveryError struct {
	Kind      Kind
	Status    int    // HTTP status; 0 when no answer arrived
	Code      string // WeChat Pay error code from the answer body
	Message   string // WeChat Pay error message from the answer body
	RequestID string // the answer's Request-ID header
	Location  string // a redirect's Location
	// RetryAfter is the server's Retry-After, uncapped; 0 when absent.
	RetryAfter time.Duration
	Err        error // the underlying transport, verification or signing error
	// Resigned is true when the authenticator changed how it signs because
	// of this answer (it now signs with WeChat Pay's time): the event is
	// retried after BackoffMin, not HeldRetry.
	Resigned bool
	// Streak, on a held error, is how many different events in a row got
	// this same refusal: a 4xx that would dead-letter one event holds the
	// queue once it is systemic (see Config.SystemicStreak).
	Streak int
}

// Error describes the failure in one line.
func (e *DeliveryError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "deliver punch: %s", e.Kind)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": status %d", e.Status)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, " %q", e.Message)
	}
	if e.Location != "" {
		fmt.Fprintf(&b, " to %s", e.Location)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request id %s)", e.RequestID)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *DeliveryError) Unwrap() error { return e.Err }

// Retryable reports whether the same event should be retried with backoff.
func (e *DeliveryError) Retryable() bool {
	switch e.Kind {
	case KindNetwork, KindServer, KindThrottled, KindUnverified, KindAbandoned:
		return true
	}
	return false
}

// Held reports whether the failure concerns every event (configuration,
// key or clock): the event stays at the head and is retried slowly.
func (e *DeliveryError) Held() bool { return e.Kind == KindHeld }

// Rejected reports whether WeChat Pay refused this event for good: it is
// dead-lettered and the loop goes on.
func (e *DeliveryError) Rejected() bool { return e.Kind == KindRejected }

// attemptError is what the outbox keeps of the failure.
func (e *DeliveryError) attemptError(at time.Time) outbox.AttemptError {
	ae := outbox.AttemptError{
		At: at, Status: e.Status, Code: e.Code, Message: e.Message, RequestID: e.RequestID,
	}
	switch {
	case e.Err != nil:
		ae.Err = e.Err.Error()
	case e.Location != "":
		ae.Err = "redirected to " + e.Location
	}
	return ae
}

// deadReason is the one-line reason kept with a dead-lettered event.
func (e *DeliveryError) deadReason() string {
	s := fmt.Sprintf("rejected by WeChat Pay: %d", e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// heldText explains a held condition in status and logs, with WeChat
// Pay's own message and Request-ID.
func (e *DeliveryError) heldText() string {
	if e.Code == "PLATE_MISMATCH" || e.Code == "CERT_REVOKED" {
		// taxi-gateway's own refusals, in gateway mode.
		return fmt.Sprintf("the gateway answered %d %s: %s", e.Status, e.Code, e.Message)
	}
	if e.Location != "" {
		return fmt.Sprintf("WeChat Pay answered %d redirecting to %s: check wechatpay.base_url", e.Status, e.Location)
	}
	if e.Status == 0 && e.Err != nil {
		return "cannot sign requests: " + e.Err.Error()
	}
	answer := fmt.Sprintf("WeChat Pay answered %d %s", e.Status, e.Code)
	if e.Message != "" {
		answer += fmt.Sprintf(" %q", e.Message)
	}
	if e.RequestID != "" {
		answer += " (Request-ID " + e.RequestID + ")"
	}
	return answer + ": " + e.heldAdvice()
}

// heldAdvice says what to check for a held condition.
func (e *DeliveryError) heldAdvice() string {
	switch {
	case e.Streak > 0:
		return fmt.Sprintf("the same refusal for %d different events in a row is the terminal's setup, not the events: "+
			"the queue is held instead of dead-lettering the backlog; check vehicle.plate_number, vehicle.region_id and the wechatpay keys, "+
			"then retry the dead-lettered ones ('outbox retry -all-dead')", e.Streak)
	case e.Code == "INVALID_REQUEST" || e.Status == 400 && wechatpay.AboutKeys(e.Message):
		return "the key the terminal names (Wechatpay-Serial) or the merchant certificate is wrong; " +
			"check wechatpay.public_key_id, public_key_file, platform_cert_file and merchant_serial_no"
	case e.Status == 401 && e.Resigned:
		return "the terminal's clock is off; signing with WeChat Pay's time from now on; fix the system clock (time sync)"
	case e.Status == 401 || e.Code == "SIGN_ERROR":
		return "signature refused; check mchid, merchant_serial_no, private_key_file and the system clock"
	case e.Status == 403 || e.Code == "NO_AUTH":
		return "the merchant may not use this API; check mchid and the API's activation on the merchant platform"
	case e.Status == 404:
		return "check wechatpay.base_url"
	}
	return "a setup problem that affects every event"
}
