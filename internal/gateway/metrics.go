package gateway

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Outcomes of a punch, the values of the outcome label: few and fixed, so
// that the label stays low-cardinality (no plate, no terminal).
const (
	OutcomeDelivered     = "delivered"      // verified 204 from WeChat Pay
	OutcomeDuplicate     = "duplicate"      // delivered before: 204 without a call
	OutcomeRejected      = "rejected"       // WeChat Pay's 4xx relayed
	OutcomeThrottled     = "throttled"      // 429: no slot within limit.max_wait
	OutcomeWeChat429     = "wechatpay_429"  // WeChat Pay answered 429
	OutcomeUnavailable   = "unavailable"    // 503: WeChat Pay unreachable, 5xx or unverifiable
	OutcomePlateMismatch = "plate_mismatch" // 403: the certificate names another plate
	OutcomeRevoked       = "revoked"        // 403: the certificate was revoked
	OutcomeBadRequest    = "bad_request"    // 400: not a punch
)

// metrics is the gateway's Prometheus registry.
type metrics struct {
	reg       *prometheus.Registry
	punches   *prometheus.CounterVec
	depth     prometheus.GaugeFunc
	wait      prometheus.Histogram
	wechat    prometheus.Histogram
	wechat429 prometheus.Counter
}

func newMetrics(depth func() float64) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		punches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "taxi_gateway_punches_total",
			Help: "Punches answered, by outcome.",
		}, []string{"outcome"}),
		depth: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "taxi_gateway_queue_depth",
			Help: "Punches waiting for a slot of the fleet-wide rate.",
		}, depth),
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "taxi_gateway_queue_wait_seconds",
			Help:    "Time a punch waited for its slot (those that got one).",
			Buckets: []float64{.001, .01, .05, .1, .25, .5, 1, 2, 3, 4, 5, 10},
		}),
		wechat: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "taxi_gateway_wechatpay_seconds",
			Help:    "Duration of the call to WeChat Pay, quick transport retries included.",
			Buckets: prometheus.DefBuckets,
		}),
		wechat429: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "taxi_gateway_wechatpay_429_total",
			Help: "429 answers from WeChat Pay: the fleet-wide rate is set above what WeChat Pay allows.",
		}),
	}
	m.reg.MustRegister(m.punches, m.depth, m.wait, m.wechat, m.wechat429,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, o := range []string{OutcomeDelivered, OutcomeDuplicate, OutcomeRejected, OutcomeThrottled,
		OutcomeWeChat429, OutcomeUnavailable, OutcomePlateMismatch, OutcomeRevoked, OutcomeBadRequest} {
		m.punches.WithLabelValues(o) // every outcome shows, at 0
	}
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
