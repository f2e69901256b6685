// Package metrics exports what taxi-gateway does to Prometheus
// (prometheus/client_golang), on a registry of its own: punches by
// outcome, queue depth, the wait for a turn, the call to WeChat Pay and
// WeChat Pay's 429s, with labels drawn only from gateway.Outcomes.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"taxi-agent/internal/gateway"
)

// Prometheus is a gateway.Observer that keeps Prometheus metrics.
type Prometheus struct {
	reg       *prometheus.Registry
	punches   *prometheus.CounterVec
	depth     prometheus.GaugeFunc
	wait      prometheus.Histogram
	wechat    prometheus.Histogram
	wechat429 prometheus.Counter
}

var _ gateway.Observer = (*Prometheus)(nil)

// New registers the metrics; depth reports the queue's depth
// (Gateway.QueueDepth) when scraped.
func New(depth func() int) *Prometheus {
	m := &Prometheus{
		reg: prometheus.NewRegistry(),
		punches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "taxi_gateway_punches_total",
			Help: "Punches answered, by outcome.",
		}, []string{"outcome"}),
		depth: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "taxi_gateway_queue_depth",
			Help: "Punches waiting for a slot of the fleet-wide rate.",
		}, func() float64 { return float64(depth()) }),
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
	for _, o := range gateway.Outcomes {
		m.punches.WithLabelValues(o) // every outcome shows, at 0
	}
	return m
}

// Handler serves the metrics in Prometheus's text format.
func (m *Prometheus) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Punch counts a punch answered with outcome.
func (m *Prometheus) Punch(outcome string) { m.punches.WithLabelValues(outcome).Inc() }

// Waited observes a punch's wait for its turn and token.
func (m *Prometheus) Waited(d time.Duration) { m.wait.Observe(d.Seconds()) }

// WeChatCall observes a call to WeChat Pay.
func (m *Prometheus) WeChatCall(d time.Duration) { m.wechat.Observe(d.Seconds()) }

// WeChat429 counts a 429 from WeChat Pay.
func (m *Prometheus) WeChat429() { m.wechat429.Inc() }
