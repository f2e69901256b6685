package uploader

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"taxi-agent/internal/outbox"
	"taxi-agent/internal/punchsim"
)

// drainEvents is how many queued events each benchmark drains.
const drainEvents = 10_000

// BenchmarkDrainVsBare drains 10 000 queued events to punchsim through the
// uploader and, in the same run, sends as many through a bare loop of
// sign + POST + verify with the same keys, server and signing code. The
// ratio metric is drain rate / bare rate (1.0 = the drain loop, outbox
// bookkeeping and retry layer cost nothing).
//
//	go test -run '^$' -bench DrainVsBare -benchtime 1x ./internal/uploader/
func BenchmarkDrainVsBare(b *testing.B) {
	sim := newSim(b, punchsim.Options{})
	auth := publicKeyAuth(b)
	var bare, drain time.Duration
	var wire uint64
	for b.Loop() {
		// The bare loop's events straddle the drain, so that both see the
		// fake in the same state (its records and nonce table grow).
		bare += bareLoop(b, sim, auth, drainEvents/2)
		d, st := drainOnce(b, sim, auth, drainEvents)
		drain += d
		wire += st.BytesSent + st.BytesReceived
		bare += bareLoop(b, sim, auth, drainEvents-drainEvents/2)
	}
	events := float64(drainEvents * b.N)
	b.ReportMetric(events/bare.Seconds(), "bare_events/s")
	b.ReportMetric(events/drain.Seconds(), "drain_events/s")
	b.ReportMetric(bare.Seconds()/drain.Seconds(), "drain/bare")
	b.ReportMetric(float64(wire)/events, "wire_B/event")
}

// bareLoop is the floor: the least a client must do per event.
func bareLoop(b *testing.B, sim *punchsim.Server, auth *DirectAuth, n int) time.Duration {
	b.Helper()
	pem, err := os.ReadFile(testKeys.CAFile)
	if err != nil {
		b.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	url := sim.URL() + PunchPath
	ctx := context.Background()

	start := time.Now()
	for i := range n {
		body, err := encodeBody(event(i))
		if err != nil {
			b.Fatal(err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "bare")
		if err := auth.Sign(ctx, req, body); err != nil {
			b.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		answer, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusNoContent {
			b.Fatalf("bare: %d %v", resp.StatusCode, err)
		}
		if err := auth.Verify(ctx, resp, answer); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

// drainOnce queues n events in a fake store and times the uploader
// draining them with the real clock.
func drainOnce(b *testing.B, sim *punchsim.Server, auth *DirectAuth, n int) (time.Duration, Status) {
	b.Helper()
	store := newFakeStore(time.Now)
	for i := range n {
		store.add(event(i))
	}
	done := make(chan struct{})
	delivered := 0
	store.OnMarkDelivered = func(uint64, time.Time) error {
		if delivered++; delivered == n {
			close(done)
		}
		return nil
	}
	up, err := New(Config{BaseURL: sim.URL(), CAFile: testKeys.CAFile, Logger: slog.New(slog.DiscardHandler)}, store, auth)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	start := time.Now()
	go func() { ran <- up.Run(ctx) }()
	select {
	case <-done:
	case <-time.After(10 * time.Minute):
		b.Fatalf("drain stalled: %+v", up.Status())
	}
	took := time.Since(start)
	cancel()
	<-ran
	st := up.Status()
	if st.Delivered != uint64(n) || st.Retried != 0 {
		b.Fatalf("drain status %+v", st)
	}
	return took, st
}

// BenchmarkWireBytes reports bytes on the wire (TLS records, both ways)
// per delivered event: cold (a new connection: TCP and TLS handshakes
// included) and warm (on a kept-alive connection).
func BenchmarkWireBytes(b *testing.B) {
	sim := newSim(b, punchsim.Options{})
	auth := publicKeyAuth(b)
	const warmEvents = 200
	var cold, warm, warmSent, warmRecv float64
	for b.Loop() {
		store := newFakeStore(time.Now)
		up, err := New(Config{BaseURL: sim.URL(), CAFile: testKeys.CAFile, Logger: slog.New(slog.DiscardHandler)}, store, auth)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan error, 1)
		go func() { ran <- up.Run(ctx) }()
		deliver := func(k int) Status {
			ids := make([]uint64, 0, k)
			for i := range k {
				ids = append(ids, store.add(event(i))...)
			}
			up.Wake()
			store.waitFor(b, "delivery", func(s *fakeStore) bool { return s.recs[ids[len(ids)-1]-1].State == outbox.Delivered })
			return up.Status()
		}
		first := deliver(1)
		after := deliver(warmEvents)
		cancel()
		<-ran
		if first.Connections != 1 || after.Connections != 1 {
			b.Fatalf("connections %d then %d, want one kept alive", first.Connections, after.Connections)
		}
		cold += float64(first.BytesSent + first.BytesReceived)
		warmSent += float64(after.BytesSent-first.BytesSent) / warmEvents
		warmRecv += float64(after.BytesReceived-first.BytesReceived) / warmEvents
		warm += float64(after.BytesSent+after.BytesReceived-first.BytesSent-first.BytesReceived) / warmEvents
	}
	n := float64(b.N)
	b.ReportMetric(cold/n, "cold_B/event")
	b.ReportMetric(warm/n, "warm_B/event")
	b.ReportMetric(warmSent/n, "warm_sent_B/event")
	b.ReportMetric(warmRecv/n, "warm_recv_B/event")
}
