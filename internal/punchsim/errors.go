package punchsim

import "errors"

// Sentinel errors of the fake endpoint.
var (
	// ErrNotLoopback is returned when asked to listen on a non-loopback
	// address: the fake holds throwaway keys and must not be reachable.
	ErrNotLoopback = errors.New("listen address is not loopback")
	// ErrRunning is returned by Start while the server is already serving.
	ErrRunning = errors.New("server already running")
	// ErrClosed is returned by Start after Close.
	ErrClosed = errors.New("server closed")
)

// Reasons a request is refused by the fake's own checks, as counted in
// Stats.Rejected and reported in Exchange.Rejection.
const (
	RejectMethod        = "method"        // not POST
	RejectPath          = "path"          // not the punch path
	RejectAuthorization = "authorization" // missing or malformed Authorization header
	RejectMchID         = "mchid"         // mchid is not the configured merchant
	RejectSerial        = "serial"        // serial_no is not the merchant certificate's
	RejectSignature     = "signature"     // signature does not verify
	RejectTimestamp     = "timestamp"     // timestamp more than 5 minutes off
	RejectNonceReused   = "nonce_reused"  // nonce seen before
	RejectContentType   = "content_type"  // not application/json
	RejectUserAgent     = "user_agent"    // no User-Agent
	RejectBody          = "body"          // body fields missing, extra or malformed
)
