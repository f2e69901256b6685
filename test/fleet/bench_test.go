package fleet

import (
	"testing"
	"time"
)

// BenchmarkFleet runs the reduced fleet (200 terminals × 5 events against
// R = 10/s, 10× real time) after an outage and with fresh backlogs, and
// reports the figures as ratios to their floors: the peak request
// rate after the first 10 s to R, the drain time to the ideal
// terminals·events/R, and requests and 429s per event (the floor is 1 and
// 0).
//
//	go test -run '^$' -bench Fleet -benchtime 1x ./test/fleet
func BenchmarkFleet(b *testing.B) {
	for _, sc := range []struct {
		name   string
		outage time.Duration
	}{{"after_outage", reducedFleet.Outage}, {"fresh", 0}} {
		b.Run(sc.name, func(b *testing.B) {
			spec := reducedFleet
			spec.Outage = sc.outage
			var peak, drained, reqs, throttled, cpu float64
			for b.Loop() {
				f := runFleet(b, spec)
				n := float64(spec.Terminals * spec.Events)
				peak += f.Peak / spec.Rate
				drained += f.Drained.Seconds() / spec.ideal().Seconds()
				reqs += float64(f.Requests) / n
				throttled += float64(f.Throttled) / n
				cpu += f.CPU
			}
			n := float64(b.N)
			b.ReportMetric(peak/n, "peak/R")
			b.ReportMetric(drained/n, "drained/ideal")
			b.ReportMetric(reqs/n, "requests/event")
			b.ReportMetric(throttled/n, "429s/event")
			b.ReportMetric(100*cpu/n, "cpu_%")
		})
	}
}

// BenchmarkWireBytes reports the bytes on the wire per delivered event
// (TLS records both ways, from the uploader's own counters): cold, warm on
// a kept-alive connection (the floor), after the server dropped the
// connection (TLS resumed), and for an event whose first try hit a reset
// connection; the ratios are to warm.
//
//	go test -run '^$' -bench WireBytes -benchtime 5x ./test/fleet
func BenchmarkWireBytes(b *testing.B) {
	var cold, warm, reconnect, reset float64
	for b.Loop() {
		c, w, rc, rs := wireFigures(b)
		cold += c.perEvent()
		warm += w.perEvent()
		reconnect += rc.perEvent()
		reset += rs.perEvent()
	}
	n := float64(b.N)
	b.ReportMetric(cold/n, "cold_B/event")
	b.ReportMetric(warm/n, "warm_B/event")
	b.ReportMetric(reconnect/n, "reconnect_B/event")
	b.ReportMetric(reset/n, "reset_retry_B/event")
	b.ReportMetric(cold/warm, "cold/warm")
	b.ReportMetric(reconnect/warm, "reconnect/warm")
	b.ReportMetric(reset/warm, "reset_retry/warm")
}
