package meter_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"taxi-agent/internal/meter"
	"taxi-agent/internal/metersim"
	"taxi-agent/internal/testsupport"
)

// harness runs a Link whose opener hands out a fresh pseudo-terminal each
// time, opened through meter.OpenSerial like a real device.
type harness struct {
	t         *testing.T
	link      *meter.Link
	ptys      chan *metersim.PTY // every pseudo-terminal the opener created
	failOpens atomic.Int32       // the next opens to fail
	events    *recorder
	logs      *testsupport.SyncBuffer
	observed  *observer
}

// startLink starts a link with handle (nil: monitor mode) and stops it at
// the end of the test, checking that Run returns nil promptly.
func startLink(t *testing.T, handle func(context.Context, meter.Event) error, edit func(*meter.LinkConfig)) *harness {
	t.Helper()
	h := &harness{t: t, ptys: make(chan *metersim.PTY, 16), events: &recorder{}, logs: &testsupport.SyncBuffer{}, observed: &observer{}}
	cfg := meter.LinkConfig{
		Open:         h.open,
		Observe:      h.observed.add,
		Logger:       slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		BackoffMin:   10 * time.Millisecond,
		BackoffMax:   50 * time.Millisecond,
		FrameTimeout: 60 * time.Millisecond,
	}
	if handle != nil {
		cfg.Handle = func(ctx context.Context, ev meter.Event) error {
			err := handle(ctx, ev)
			h.events.add(ev, err)
			return err
		}
	}
	if edit != nil {
		edit(&cfg)
	}
	h.link = meter.NewLink(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.link.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v after cancel, want nil", err)
			}
		case <-time.After(3 * time.Second):
			t.Error("Run did not return after cancel")
		}
		if logs := h.logs.String(); strings.Contains(logs, "42108319880906011X") || strings.Contains(logs, "4210831988000000") {
			t.Errorf("a driver licence reached the logs unmasked:\n%s", logs)
		}
	})
	return h
}

func (h *harness) open() (io.ReadWriteCloser, error) {
	if h.failOpens.Load() > 0 {
		h.failOpens.Add(-1)
		return nil, errors.New("no such device (test)")
	}
	p, err := metersim.OpenPTY()
	if err != nil {
		return nil, err
	}
	h.t.Cleanup(func() { p.Close() })
	port, err := meter.OpenSerial(meter.PortConfig{Device: p.Path, ReadTimeout: 100 * time.Millisecond})
	if err != nil {
		p.Close()
		return nil, err
	}
	h.ptys <- p
	return port, nil
}

// meter waits for the next pseudo-terminal the link opened and starts a
// simulated meter on it.
func (h *harness) meter(o metersim.Options) (*metersim.Meter, *metersim.PTY) {
	h.t.Helper()
	select {
	case p := <-h.ptys:
		m := metersim.New(p.Master, o)
		h.t.Cleanup(func() { m.Close() })
		return m, p
	case <-time.After(3 * time.Second):
		h.t.Fatal("the link did not open a port")
		return nil, nil
	}
}

// waitFor polls cond until it holds, failing the test after 5 s.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	testsupport.WaitFor(tb, 5*time.Second, what, cond)
}

// recorder keeps the events the handler saw.
type recorder struct {
	mu     sync.Mutex
	events []meter.Event
	errs   []error
}

func (r *recorder) add(ev meter.Event, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	r.errs = append(r.errs, err)
}

func (r *recorder) byIdentity() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := map[string]int{}
	for _, ev := range r.events {
		n[ev.Identity()]++
	}
	return n
}

func (r *recorder) all() []meter.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]meter.Event(nil), r.events...)
}

// observer keeps copies of what Observe saw.
type observer struct {
	mu     sync.Mutex
	events []meter.FrameEvent
}

func (o *observer) add(e meter.FrameEvent) {
	e.Raw = bytes.Clone(e.Raw)
	e.Frame.Data = bytes.Clone(e.Frame.Data)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, e)
}

func (o *observer) find(match func(meter.FrameEvent) bool) []meter.FrameEvent {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []meter.FrameEvent
	for _, e := range o.events {
		if match(e) {
			out = append(out, e)
		}
	}
	return out
}

// logCount counts substr in the link's logs.
func logCount(logs *testsupport.SyncBuffer, substr string) int {
	return strings.Count(logs.String(), substr)
}

func ok(context.Context, meter.Event) error { return nil }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
