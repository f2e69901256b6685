package uploader

import (
	"strings"
	"testing"
	"time"

	"taxi-agent/internal/outbox"
	"taxi-agent/internal/punchsim"
)

// stallFirst makes the fake stall the first request for d and signals when
// that request has arrived.
func stallFirst(d time.Duration) (punchsim.Options, <-chan struct{}) {
	arrived := make(chan struct{})
	return punchsim.Options{Faults: func(x punchsim.Exchange) punchsim.Fault {
		if x.Seq == 1 {
			close(arrived)
			return punchsim.Fault{Kind: punchsim.Stall, Delay: d}
		}
		return punchsim.Fault{}
	}}, arrived
}

func TestShutdownAbandonsSlowAnswer(t *testing.T) {
	opts, arrived := stallFirst(time.Hour)
	const grace = 200 * time.Millisecond
	e := newEnv(t, opts, nil, func(c *Config) { c.ShutdownGrace = grace })
	e.store.add(event(1), event(2))
	at := e.clock.Now()
	e.start()
	<-arrived

	took, err := e.stop()
	if err != nil {
		t.Fatalf("Run returned %v, want nil", err)
	}
	if took < grace || took > grace+3*time.Second {
		t.Errorf("Run returned %s after cancel, want just over the %s grace", took, grace)
	}
	rec := e.store.get(1)
	if rec.State != outbox.Pending || rec.Attempts != 1 || rec.LastError == nil ||
		!strings.Contains(rec.LastError.Err, "abandoned") || !rec.NextAttempt.Equal(at) {
		t.Errorf("abandoned record %+v (%+v): want pending, due at once, error saying abandoned", rec, rec.LastError)
	}
	if r2 := e.store.get(2); r2.State != outbox.Pending || r2.Attempts != 0 {
		t.Errorf("event 2 touched: %+v", r2)
	}
	if n := len(e.sim.Accepted()); n != 0 {
		t.Errorf("fake accepted %d", n)
	}
	if st := e.up.Status(); st.Running || st.Held != "" {
		t.Errorf("status after shutdown %+v", st)
	}
}

func TestShutdownFinishesAnswerWithinGrace(t *testing.T) {
	opts, arrived := stallFirst(100 * time.Millisecond)
	e := newEnv(t, opts, nil, func(c *Config) { c.ShutdownGrace = 5 * time.Second })
	e.store.add(event(1), event(2))
	e.start()
	<-arrived

	took, err := e.stop()
	if err != nil || took > 3*time.Second {
		t.Fatalf("Run returned %v after %s", err, took)
	}
	if rec := e.store.get(1); rec.State != outbox.Delivered {
		t.Errorf("in-flight event %+v, want delivered and recorded", rec)
	}
	if rec := e.store.get(2); rec.State != outbox.Pending {
		t.Errorf("event 2 %+v: nothing new may start after shutdown", rec)
	}
	if n := len(e.sim.Exchanges()); n != 1 {
		t.Errorf("%d requests after shutdown began, want only the one in flight", n)
	}
}

func TestRunTwiceRefused(t *testing.T) {
	e := newEnv(t, punchsim.Options{}, nil, nil)
	e.start()
	e.store.waitFor(t, "loop running", func(s *fakeStore) bool { return s.calls["head"] >= 1 })
	if err := e.up.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second Run: %v, want ErrRunning", err)
	}
}

func TestShutdownStartsNoNewTransportRetry(t *testing.T) {
	arrived := make(chan struct{})
	opts := punchsim.Options{Faults: func(x punchsim.Exchange) punchsim.Fault {
		if x.Seq == 1 {
			close(arrived)
			return punchsim.Fault{Kind: punchsim.ServerError, Delay: 150 * time.Millisecond}
		}
		return punchsim.Fault{}
	}}
	e := newEnv(t, opts, nil, func(c *Config) {
		c.TransportRetries = 2
		c.ShutdownGrace = 5 * time.Second
	})
	e.store.add(event(1))
	e.start()
	<-arrived
	if _, err := e.stop(); err != nil {
		t.Fatal(err)
	}
	if n := len(e.sim.Exchanges()); n != 1 {
		t.Errorf("%d requests: a transport retry started after shutdown began", n)
	}
	rec := e.store.get(1)
	if rec.State != outbox.Pending || rec.Attempts != 1 || rec.LastError == nil || rec.LastError.Status != 500 {
		t.Errorf("record %+v (%+v): want the 500 recorded within the grace", rec, rec.LastError)
	}
}
