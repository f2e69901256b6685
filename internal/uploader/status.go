package uploader

import (
	"encoding/json"
	"time"

	"taxi-agent/internal/outbox"
)

// Status is the uploader's state for `agent status` and the admin socket.
type Status struct {
	// Running is true while Run is active.
	Running bool `json:"running"`
	// Mode is "direct" (punches signed here with the merchant key) or
	// "gateway" (sent to taxi-gateway over mutual TLS).
	Mode string `json:"mode"`
	// LastAnswer is the last HTTP answer of the endpoint (WeChat Pay, or
	// the gateway in gateway mode); nil before any.
	LastAnswer *LastAnswer `json:"last_answer,omitempty"`
	// LastDelivery is when the last punch was delivered.
	LastDelivery    time.Time `json:"last_delivery,omitzero"`
	LastDeliveredID uint64    `json:"last_delivered_id,omitempty"`
	// LastError is the last failed attempt; it stays after a recovery.
	LastError *LastError `json:"last_error,omitempty"`
	// ConsecutiveFailures counts attempts since the last delivery that did
	// not deliver (dead-letters included).
	ConsecutiveFailures int `json:"consecutive_failures"`
	// HeadID is the event at the head of the outbox, 0 when none is pending.
	HeadID uint64 `json:"head_id,omitempty"`
	// NextAttempt is when the head will be tried next; zero when idle.
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	// Held explains a 401/403/404 (or signing) condition that holds every
	// event; empty when none.
	Held string `json:"held,omitempty"`
	// HeldAnswer is the answer that holds the queue: WeChat Pay's status,
	// code, message and Request-ID, since when, and for a systemic 4xx how
	// many events in a row got it.
	HeldAnswer *HeldAnswer `json:"held_answer,omitempty"`
	// WaitingForClock is true while the head waits for a trusted clock.
	WaitingForClock bool `json:"waiting_for_clock,omitempty"`
	// StoreError is the last outbox error while it persists.
	StoreError string `json:"store_error,omitempty"`

	Delivered         uint64 `json:"delivered"`          // punches delivered
	Retried           uint64 `json:"retried"`            // failed attempts scheduled for retry (held included)
	Throttled         uint64 `json:"throttled"`          // of those, answered 429 (rate-limited)
	DeadLettered      uint64 `json:"dead_lettered"`      // punches dead-lettered
	UnverifiedAnswers uint64 `json:"unverified_answers"` // 2xx answers whose signature did not verify
	TransportRetries  uint64 `json:"transport_retries"`  // quick retries inside attempts
	BytesSent         uint64 `json:"bytes_sent"`         // on the wire, TLS included
	BytesReceived     uint64 `json:"bytes_received"`     // on the wire, TLS included
	Connections       uint64 `json:"connections"`        // TCP connections opened

	// Auth is the authenticator's state (keys, WeChat Pay's time,
	// certificate downloads) when it reports one (DirectAuth does).
	Auth *AuthStatus `json:"auth,omitempty"`
}

// HeldAnswer is the answer behind a held condition.
type HeldAnswer struct {
	Status    int       `json:"status,omitempty"`
	Code      string    `json:"code,omitempty"`
	Message   string    `json:"message,omitempty"`
	RequestID string    `json:"request_id,omitempty"`
	Since     time.Time `json:"since"`
	Streak    int       `json:"streak,omitempty"`
}

// LastAnswer is an endpoint's answer as Status shows it: when, the HTTP
// status, and the code and message of an error body.
type LastAnswer struct {
	At      time.Time `json:"at"`
	Status  int       `json:"status"`
	Code    string    `json:"code,omitempty"`
	Message string    `json:"message,omitempty"`
}

// summary is the answer as Status shows it.
func (a Answer) summary() *LastAnswer {
	la := &LastAnswer{At: a.At, Status: a.Status}
	var body struct{ Code, Message string }
	if json.Unmarshal(a.Body, &body) == nil {
		la.Code, la.Message = body.Code, body.Message
	}
	return la
}

// LastError is a failed attempt as Status shows it.
type LastError struct {
	outbox.AttemptError
	Kind    string `json:"kind"`
	EventID uint64 `json:"event_id"`
}

// Status returns a snapshot of the uploader's state.
func (u *Uploader) Status() Status {
	u.mu.Lock()
	st := u.st
	if st.LastError != nil {
		le := *st.LastError
		st.LastError = &le
	}
	u.mu.Unlock()
	st.Running = u.running.Load()
	st.TransportRetries = u.client.retries.Load()
	st.BytesSent = u.wire.sent.Load()
	st.BytesReceived = u.wire.received.Load()
	st.Connections = u.wire.dials.Load()
	st.Mode = "direct"
	if _, ok := u.client.auth.(TLSAuthenticator); ok {
		st.Mode = "gateway"
	}
	if a := u.client.last.Load(); a != nil {
		st.LastAnswer = a.summary()
	}
	if ha := st.HeldAnswer; ha != nil {
		c := *ha
		st.HeldAnswer = &c
	}
	if r, ok := u.client.auth.(interface{ AuthStatus() AuthStatus }); ok {
		a := r.AuthStatus()
		st.Auth = &a
	}
	return st
}

// update changes the status under the lock.
func (u *Uploader) update(f func(st *Status)) {
	u.mu.Lock()
	defer u.mu.Unlock()
	f(&u.st)
}
