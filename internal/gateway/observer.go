package gateway

import (
	"context"
	"net/http"
	"time"
)

// Outcomes of a punch, as Observer.Punch reports them: few and fixed, so
// that a metric labelled with them stays low-cardinality (no plate, no
// terminal).
const (
	OutcomeDelivered     = "delivered"      // verified 204 from WeChat Pay
	OutcomeDuplicate     = "duplicate"      // delivered before: 204 without a call
	OutcomeRejected      = "rejected"       // WeChat Pay's 4xx relayed
	OutcomeThrottled     = "throttled"      // 429: no turn within limit.max_wait
	OutcomeWeChat429     = "wechatpay_429"  // WeChat Pay answered 429
	OutcomeUnavailable   = "unavailable"    // 503: WeChat Pay unreachable, 5xx or unverifiable
	OutcomePlateMismatch = "plate_mismatch" // 403: the certificate names another plate
	OutcomeRevoked       = "revoked"        // 403 or a refused handshake: the certificate is revoked
	OutcomeBadRequest    = "bad_request"    // 400/404: not a punch
)

// Outcomes lists every outcome, for an Observer that shows them all from
// the start.
var Outcomes = []string{OutcomeDelivered, OutcomeDuplicate, OutcomeRejected, OutcomeThrottled,
	OutcomeWeChat429, OutcomeUnavailable, OutcomePlateMismatch, OutcomeRevoked, OutcomeBadRequest}

// Observer is told what the gateway does, for metrics (package
// gateway/metrics exports them to Prometheus). Its methods must be safe
// for concurrent use and must not block.
type Observer interface {
	Punch(outcome string)       // a punch answered (or a handshake refused)
	Waited(d time.Duration)     // a punch's wait for its turn and token
	WeChatCall(d time.Duration) // a call to WeChat Pay, quick retries included
	WeChat429()                 // WeChat Pay answered 429
}

type nopObserver struct{}

func (nopObserver) Punch(string)             {}
func (nopObserver) Waited(time.Duration)     {}
func (nopObserver) WeChatCall(time.Duration) {}
func (nopObserver) WeChat429()               {}

// SharedLimiter is a limit that several replicas share (package
// gateway/redislimit), with their common memory of delivered punches.
type SharedLimiter interface {
	Limiter
	// Delivered reports whether any replica delivered k within DedupWindow.
	Delivered(ctx context.Context, k PunchKey) (bool, error)
	// MarkDelivered records k as delivered for DedupWindow.
	MarkDelivered(ctx context.Context, k PunchKey) error
	Close() error
}

// Options are the parts of a gateway that cmd/gateway plugs in, so that
// the relay itself links neither Prometheus nor Redis (the agent's demo
// runs it). The zero value observes nothing and limits in process.
type Options struct {
	// Observer is told what the gateway does; nil observes nothing.
	Observer Observer
	// Metrics is served at /metrics on the metrics listener of Serve.
	Metrics http.Handler
	// Shared is the replicas' shared limit, required when limit.redis_url
	// is set.
	Shared SharedLimiter
}
