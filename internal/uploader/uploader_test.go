package uploader

import (
	"slices"
	"strings"
	"testing"
	"time"

	"taxi-agent/internal/outbox"
	"taxi-agent/internal/punchsim"
	"taxi-agent/internal/testsupport"
)

func TestDeliversInOrder(t *testing.T) {
	for _, tc := range []struct {
		name       string
		auth       func(testing.TB) *DirectAuth
		wantSerial string
	}{
		{"public key mode", publicKeyAuth, testKeys.PublicKeyID},
		{"platform certificate mode", platformCertAuth, testKeys.PlatformSerialNo},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, punchsim.Options{}, tc.auth(t), nil)
			ids := e.store.add(event(1), event(2), event(3), event(4), event(5))
			e.start()
			for _, id := range ids {
				rec := e.waitState(id, outbox.Delivered)
				if !rec.DeliveredAt.Equal(e.clock.Now()) || rec.Attempts != 1 || rec.LastError != nil {
					t.Errorf("record %d: %+v", id, rec)
				}
			}
			if got, want := e.licences(), licencesOf(1, 2, 3, 4, 5); !slices.Equal(got, want) {
				t.Fatalf("accepted %v, want %v", got, want)
			}
			for _, x := range e.sim.Exchanges() {
				if x.AcceptSerial != tc.wantSerial {
					t.Errorf("request sent Wechatpay-Serial %q, want %q", x.AcceptSerial, tc.wantSerial)
				}
			}
			acc := e.sim.Accepted()[0]
			if ev := event(1); acc != (punchsim.Punch{PlateNumber: ev.PlateNumber, DriverLicense: ev.DriverLicense,
				EventTime: ev.EventTime, EventType: ev.Type, RegionID: ev.RegionID}) {
				t.Errorf("fake accepted %+v for %+v", acc, ev)
			}
			st := e.up.Status()
			if st.Delivered != 5 || st.LastDeliveredID != 5 || !st.LastDelivery.Equal(e.clock.Now()) ||
				st.ConsecutiveFailures != 0 || st.LastError != nil || !st.Running {
				t.Errorf("status %+v", st)
			}
			// Keep-alive: one TCP connection for all five, on both ends.
			if st.Connections != 1 || e.sim.Stats().Connections != 1 {
				t.Errorf("connections: client %d, server %d; want 1 kept alive", st.Connections, e.sim.Stats().Connections)
			}
			if st.BytesSent == 0 || st.BytesReceived == 0 {
				t.Errorf("no bytes counted: %+v", st)
			}
		})
	}
}

// faultCase is one answer class and what the outbox must show after it.
type faultCase struct {
	name       string
	fault      punchsim.Fault
	outage     bool // the fake is down (connection refused) instead
	tweak      func(*Config)
	wantKind   Kind
	wantStatus int
	wantCode   string
	wantErr    string // in LastError.Err
}

func TestRetriedFaults(t *testing.T) {
	for _, tc := range []faultCase{
		{name: "500", fault: punchsim.Fault{Kind: punchsim.ServerError}, wantKind: KindServer, wantStatus: 500, wantCode: "SYSTEM_ERROR"},
		{name: "503", fault: punchsim.Fault{Kind: punchsim.Unavailable}, wantKind: KindServer, wantStatus: 503, wantCode: "SYSTEM_ERROR"},
		{name: "429", fault: punchsim.Fault{Kind: punchsim.RateLimited}, wantKind: KindThrottled, wantStatus: 429, wantCode: "FREQUENCY_LIMITED"},
		{name: "reset", fault: punchsim.Fault{Kind: punchsim.Reset}, wantKind: KindNetwork, wantErr: "reset"},
		// The timeout also bounds the retry that must succeed: a new
		// connection, a TLS handshake and a signature on both sides, which
		// on the emulated armv7 CPU under -p 4 took over 300 ms.
		{name: "stall past the attempt timeout", fault: punchsim.Fault{Kind: punchsim.Stall, Delay: time.Hour},
			tweak: func(c *Config) { c.AttemptTimeout = testsupport.Patience(time.Second) }, wantKind: KindNetwork, wantErr: "Timeout"},
		{name: "outage", outage: true, wantKind: KindNetwork, wantErr: "connection refused"},
		{name: "unsigned 204", fault: punchsim.Fault{Kind: punchsim.Unsigned}, wantKind: KindUnverified, wantStatus: 204, wantErr: ErrUnsigned.Error()},
		{name: "badly signed 204", fault: punchsim.Fault{Kind: punchsim.BadSignature}, wantKind: KindUnverified, wantStatus: 204, wantErr: ErrBadSignature.Error()},
		{name: "old timestamp 204", fault: punchsim.Fault{Kind: punchsim.OldTimestamp}, wantKind: KindUnverified, wantStatus: 204, wantErr: ErrStaleAnswer.Error()},
		{name: "SIGNTEST 204", fault: punchsim.Fault{Kind: punchsim.SignTest}, wantKind: KindUnverified, wantStatus: 204, wantErr: ErrSignTest.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, punchsim.Options{}, nil, tc.tweak)
			e.store.add(event(1), event(2))
			if tc.outage {
				if err := e.sim.Stop(); err != nil {
					t.Fatal(err)
				}
			} else {
				e.sim.Inject(tc.fault)
			}
			at := e.clock.Now()
			e.start()

			rec := e.waitAttempts(1, 1)
			checkLastError(t, e, rec, tc)
			// Full jitter: due within (at, at + BackoffMin] after a first failure.
			if !rec.NextAttempt.After(at) || rec.NextAttempt.After(at.Add(time.Second)) {
				t.Errorf("next attempt %s, want within (0, 1s] of %s", rec.NextAttempt, at)
			}
			if r2 := e.store.get(2); r2.State != outbox.Pending || r2.Attempts != 0 {
				t.Errorf("event behind the head was touched: %+v", r2)
			}
			for _, x := range e.sim.Exchanges() {
				if x.Punch != nil && x.Punch.DriverLicense == event(2).DriverLicense {
					t.Fatal("event 2 was sent while event 1 was being retried")
				}
			}
			st := e.up.Status()
			if st.Retried != 1 || st.ConsecutiveFailures != 1 || st.Held != "" || st.DeadLettered != 0 ||
				!st.NextAttempt.Equal(rec.NextAttempt) || st.LastError == nil || st.LastError.Kind != tc.wantKind.String() {
				t.Errorf("status %+v", st)
			}
			if want := uint64(0); tc.wantKind == KindUnverified {
				want = 1
				if st.UnverifiedAnswers != want {
					t.Errorf("unverified answers %d, want %d", st.UnverifiedAnswers, want)
				}
			}

			if tc.outage {
				if err := e.sim.Start(); err != nil {
					t.Fatal(err)
				}
			}
			e.clock.WaitSleeper(t, rec.NextAttempt, 1)
			e.clock.Set(rec.NextAttempt)
			e.waitState(2, outbox.Delivered)
			if r1 := e.store.get(1); r1.State != outbox.Delivered || r1.Attempts != 2 {
				t.Errorf("head after retry: %+v", r1)
			}
			if got, want := e.licences(), licencesOf(1, 2); !slices.Equal(got, want) {
				t.Errorf("accepted %v, want %v", got, want)
			}
			if st := e.up.Status(); st.ConsecutiveFailures != 0 || st.Delivered != 2 {
				t.Errorf("status after recovery %+v", st)
			}
			if !strings.Contains(e.logs.String(), "punch delivery recovered") {
				t.Error("recovery not logged")
			}
		})
	}
}

// checkLastError compares the recorded attempt with the answer the fake
// gave.
func checkLastError(t *testing.T, e *env, rec outbox.Record, tc faultCase) {
	t.Helper()
	le := rec.LastError
	if le == nil {
		t.Fatalf("no last error on %+v", rec)
	}
	if le.Status != tc.wantStatus || le.Code != tc.wantCode || !le.At.Equal(e.clock.Now()) {
		t.Errorf("last error %+v, want status %d code %q", le, tc.wantStatus, tc.wantCode)
	}
	if tc.wantCode != "" && le.Message == "" {
		t.Errorf("last error %+v has no message", le)
	}
	if tc.wantErr != "" && !strings.Contains(le.Err, tc.wantErr) {
		t.Errorf("last error %q, want it to mention %q", le.Err, tc.wantErr)
	}
	if tc.wantStatus != 0 {
		x := e.sim.Exchanges()
		if got := x[len(x)-1].RequestID; le.RequestID != got {
			t.Errorf("request id %q, want %q", le.RequestID, got)
		}
	}
}

func TestHeldFaults(t *testing.T) {
	for _, tc := range []faultCase{
		{name: "401", fault: punchsim.Fault{Kind: punchsim.Unauthorized}, wantKind: KindHeld, wantStatus: 401, wantCode: "SIGN_ERROR"},
		{name: "403", fault: punchsim.Fault{Kind: punchsim.Forbidden}, wantKind: KindHeld, wantStatus: 403, wantCode: "NO_AUTH"},
		{name: "404", fault: punchsim.Fault{Kind: punchsim.NotFound}, wantKind: KindHeld, wantStatus: 404, wantCode: "RESOURCE_NOT_EXISTS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, punchsim.Options{}, nil, nil)
			e.store.add(event(1), event(2))
			e.sim.Inject(tc.fault, tc.fault) // twice: the condition persists
			at := e.clock.Now()
			e.start()

			rec := e.waitAttempts(1, 1)
			checkLastError(t, e, rec, tc)
			held := 5 * time.Minute
			if rec.NextAttempt.Before(at.Add(held*9/10)) || rec.NextAttempt.After(at.Add(held*11/10)) {
				t.Errorf("next attempt in %s, want HeldRetry (5m) ±10%%", rec.NextAttempt.Sub(at))
			}
			st := e.up.Status()
			if !strings.Contains(st.Held, tc.name) || st.DeadLettered != 0 {
				t.Errorf("status %+v: want the held condition shown", st)
			}

			// Still held on the slow retry: logged once, nothing dead.
			e.clock.WaitSleeper(t, rec.NextAttempt, 1)
			e.clock.Set(rec.NextAttempt)
			rec = e.waitAttempts(1, 2)
			if n := strings.Count(e.logs.String(), "punch delivery held"); n != 1 {
				t.Errorf("held condition logged %d times, want once", n)
			}
			if e.store.count("dead_letter") != 0 || e.store.get(2).Attempts != 0 {
				t.Errorf("held condition touched other records: %+v", e.store.snapshot())
			}

			e.clock.WaitSleeper(t, rec.NextAttempt, 1)
			e.clock.Set(rec.NextAttempt)
			e.waitState(2, outbox.Delivered)
			if got, want := e.licences(), licencesOf(1, 2); !slices.Equal(got, want) {
				t.Errorf("accepted %v, want %v", got, want)
			}
			if st := e.up.Status(); st.Held != "" {
				t.Errorf("held condition not cleared: %q", st.Held)
			}
			if !strings.Contains(e.logs.String(), "held condition cleared") {
				t.Error("recovery from the held condition not logged")
			}
		})
	}
}

func TestDeadLetterThenNext(t *testing.T) {
	e := newEnv(t, punchsim.Options{}, nil, nil)
	e.store.add(event(1), event(2))
	e.sim.Inject(punchsim.Fault{Kind: punchsim.BadRequest, Code: "PARAM_ERROR", Message: "driver_license 未登记"})
	e.start()

	dead := e.waitState(1, outbox.Dead)
	e.waitState(2, outbox.Delivered) // at once: no clock change
	x := e.sim.Exchanges()
	le := dead.LastError
	if le == nil || le.Status != 400 || le.Code != "PARAM_ERROR" || le.Message != "driver_license 未登记" || le.RequestID != x[0].RequestID {
		t.Fatalf("dead record's error %+v", le)
	}
	if dead.Attempts != 1 || !strings.Contains(dead.DeadReason, "400 PARAM_ERROR") {
		t.Errorf("dead record %+v", dead)
	}
	if got, want := e.licences(), licencesOf(2); !slices.Equal(got, want) {
		t.Errorf("accepted %v, want %v", got, want)
	}
	st := e.up.Status()
	if st.DeadLettered != 1 || st.Delivered != 1 || st.Retried != 0 {
		t.Errorf("status %+v", st)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "punch dead-lettered") || strings.Contains(logs, event(1).DriverLicense) {
		t.Errorf("dead-letter log missing or licence unmasked:\n%s", logs)
	}
	if !strings.Contains(logs, "*0001") {
		t.Errorf("masked licence not in logs:\n%s", logs)
	}
}
