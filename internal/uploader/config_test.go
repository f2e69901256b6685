package uploader

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"taxi-agent/internal/outbox"
	"taxi-agent/internal/punchsim"
	"taxi-agent/internal/testsupport"
)

func TestNewRefusesBadConfig(t *testing.T) {
	garbage := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	store, auth := newFakeStore(time.Now), publicKeyAuth(t)
	for _, tc := range []struct {
		name string
		cfg  Config
		want error
	}{
		{"plain http", Config{BaseURL: "http://127.0.0.1:1"}, ErrConfig},
		{"no URL", Config{}, ErrConfig},
		{"backoff min above max", Config{BaseURL: "https://x", BackoffMin: time.Hour, BackoffMax: time.Minute}, ErrConfig},
		{"negative grace", Config{BaseURL: "https://x", ShutdownGrace: -1}, ErrConfig},
		{"CA file without certificates", Config{BaseURL: "https://x", CAFile: garbage}, ErrNoCertificates},
		{"missing CA file", Config{BaseURL: "https://x", CAFile: garbage + ".missing"}, os.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg, store, auth); !errors.Is(err, tc.want) {
				t.Errorf("New = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := New(Config{BaseURL: "https://x"}, nil, auth); !errors.Is(err, ErrConfig) {
		t.Errorf("New without store = %v", err)
	}
}

func TestTLSAlwaysVerified(t *testing.T) {
	// Without ca_file the fake's private CA is not trusted: no request gets
	// through, and a certificate error is not retried by the transport.
	e := newEnv(t, punchsim.Options{}, nil, func(c *Config) {
		c.CAFile = ""
		c.TransportRetries = 2
	})
	e.store.add(event(1))
	e.start()
	rec := e.waitAttempts(1, 1)
	if rec.LastError == nil || !strings.Contains(rec.LastError.Err, "certificate") {
		t.Errorf("last error %+v, want a certificate error", rec.LastError)
	}
	if n := len(e.sim.Exchanges()); n != 0 {
		t.Errorf("%d requests reached the fake over untrusted TLS", n)
	}
	if st := e.up.Status(); st.TransportRetries != 0 || st.LastError.Kind != "network" {
		t.Errorf("status %+v", st)
	}
}

func TestStatusJSON(t *testing.T) {
	e := newEnv(t, punchsim.Options{}, nil, nil)
	e.store.add(event(1), event(2))
	e.sim.Inject(punchsim.Fault{Kind: punchsim.BadRequest})
	e.start()
	e.waitState(2, outbox.Delivered)
	data, err := json.Marshal(e.up.Status())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"running", "last_delivery", "last_error", "consecutive_failures", "delivered", "retried",
		"dead_lettered", "unverified_answers", "transport_retries", "bytes_sent", "bytes_received", "connections"} {
		if _, ok := m[k]; !ok {
			t.Errorf("status JSON lacks %q: %s", k, data)
		}
	}
	le, _ := m["last_error"].(map[string]any)
	for _, k := range []string{"at", "status", "code", "message", "request_id", "kind", "event_id"} {
		if _, ok := le[k]; !ok {
			t.Errorf("last_error lacks %q: %s", k, data)
		}
	}
}

func TestDeliveryErrorClassification(t *testing.T) {
	for _, tc := range []struct {
		kind                      Kind
		retryable, held, rejected bool
	}{
		{KindNetwork, true, false, false},
		{KindServer, true, false, false},
		{KindThrottled, true, false, false},
		{KindUnverified, true, false, false},
		{KindAbandoned, true, false, false},
		{KindHeld, false, true, false},
		{KindRejected, false, false, true},
	} {
		e := &DeliveryError{Kind: tc.kind, Err: ErrSignTest}
		if e.Retryable() != tc.retryable || e.Held() != tc.held || e.Rejected() != tc.rejected {
			t.Errorf("%s: retryable %v held %v rejected %v", tc.kind, e.Retryable(), e.Held(), e.Rejected())
		}
		var de *DeliveryError
		if err := error(e); !errors.As(err, &de) || !errors.Is(err, ErrSignTest) {
			t.Errorf("%s: errors.As/Is do not see through %v", tc.kind, err)
		}
	}
}

func TestRedirectIsHeld(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://elsewhere.example/v3/taxi-invoice/attendance/punch", http.StatusFound)
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	clock, logs := testsupport.NewClock(testEpoch), &testsupport.SyncBuffer{}
	store := newFakeStore(clock.Now)
	cfg := testConfig(newSim(t, punchsim.Options{}), clock, logs)
	cfg.BaseURL, cfg.CAFile = srv.URL, ca
	up, err := New(cfg, store, publicKeyAuth(t))
	if err != nil {
		t.Fatal(err)
	}
	store.add(event(1))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- up.Run(ctx) }()
	defer func() { cancel(); <-done }()
	store.waitFor(t, "a failed attempt", func(s *fakeStore) bool { return s.recs[0].Attempts == 1 })
	rec := store.get(1)
	if rec.State != outbox.Pending || rec.LastError.Status != http.StatusFound || !strings.Contains(rec.LastError.Err, "elsewhere.example") {
		t.Errorf("record %+v (%+v): want held, not followed", rec, rec.LastError)
	}
	if st := up.Status(); !strings.Contains(st.Held, "base_url") {
		t.Errorf("held %q", st.Held)
	}
}
