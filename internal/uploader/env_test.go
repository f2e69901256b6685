package uploader

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"taxi-agent/internal/outbox"
	"taxi-agent/internal/punch"
	"taxi-agent/internal/punchsim"
	"taxi-agent/internal/testsupport"
)

// testKeys are generated once per test binary: RSA key generation is the
// slowest step of these tests.
var testKeys punchsim.Keys

func TestMain(m *testing.M) {
	testsupport.MainWithDir(m, "uploader-keys-", func(dir string) (err error) {
		testKeys, err = punchsim.GenerateKeys(dir)
		return err
	})
}

// newSim starts a fake punch endpoint closed at cleanup.
func newSim(t testing.TB, opts punchsim.Options) *punchsim.Server {
	t.Helper()
	s, err := punchsim.New(testKeys, opts)
	if err != nil {
		t.Fatalf("start punchsim: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// publicKeyAuth is DirectAuth in WeChat Pay public-key mode.
func publicKeyAuth(t testing.TB) *DirectAuth {
	t.Helper()
	a, err := NewDirectAuth(DirectAuthConfig{
		MchID: testKeys.MchID, MerchantSerialNo: testKeys.MerchantSerialNo, PrivateKeyFile: testKeys.PrivateKeyFile,
		PublicKeyID: testKeys.PublicKeyID, PublicKeyFile: testKeys.PublicKeyFile,
	})
	if err != nil {
		t.Fatalf("NewDirectAuth: %v", err)
	}
	return a
}

// platformCertAuth is DirectAuth in platform-certificate mode.
func platformCertAuth(t testing.TB) *DirectAuth {
	t.Helper()
	a, err := NewDirectAuth(DirectAuthConfig{
		MchID: testKeys.MchID, MerchantSerialNo: testKeys.MerchantSerialNo, PrivateKeyFile: testKeys.PrivateKeyFile,
		PlatformCertFile: testKeys.PlatformCertFile,
	})
	if err != nil {
		t.Fatalf("NewDirectAuth: %v", err)
	}
	return a
}

// event returns the i-th test punch: distinct licences so order shows.
func event(i int) punch.Event {
	typ := punch.SignIn
	if i%2 == 0 {
		typ = punch.SignOut
	}
	return punch.Event{
		Type:          typ,
		DriverLicense: fmt.Sprintf("4210831988090%05d", i),
		PlateNumber:   "粤B12345",
		RegionID:      440300,
		EventTime:     fmt.Sprintf("2026-11-28T10:%02d:00.123+08:00", i%60),
	}
}

// env is one uploader wired to a fake store, a fake clock and punchsim.
type env struct {
	t     testing.TB
	sim   *punchsim.Server
	store *fakeStore
	clock *testsupport.Clock
	up    *Uploader
	logs  *testsupport.SyncBuffer

	cancel context.CancelFunc
	done   chan error
}

// testConfig is the tests' base config: deterministic schedule on the fake
// clock, short real-time bounds, no transport retries unless a test wants
// them.
func testConfig(sim *punchsim.Server, clock *testsupport.Clock, logs *testsupport.SyncBuffer) Config {
	return Config{
		BaseURL:          sim.URL(),
		CAFile:           testKeys.CAFile,
		UserAgent:        "taxi-agent-test/1",
		BackoffMin:       time.Second,
		BackoffMax:       5 * time.Minute,
		HeldRetry:        5 * time.Minute,
		RetryAfterCap:    time.Minute,
		AttemptTimeout:   5 * time.Second,
		ShutdownGrace:    200 * time.Millisecond,
		ClockRetry:       30 * time.Second,
		TransportRetries: -1,
		TransportWaitMin: time.Millisecond,
		TransportWaitMax: 20 * time.Millisecond,
		Now:              clock.Now,
		After:            clock.After,
		Rand:             rand.New(rand.NewPCG(1, 2)),
		Logger:           slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// newEnv builds an env; tweak adjusts the config before New.
func newEnv(t testing.TB, opts punchsim.Options, auth Authenticator, tweak func(*Config)) *env {
	t.Helper()
	e := &env{t: t, sim: newSim(t, opts), clock: testsupport.NewClock(testEpoch), logs: &testsupport.SyncBuffer{}}
	e.store = newFakeStore(e.clock.Now)
	cfg := testConfig(e.sim, e.clock, e.logs)
	if tweak != nil {
		tweak(&cfg)
	}
	if auth == nil {
		auth = publicKeyAuth(t)
	}
	up, err := New(cfg, e.store, auth)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.up = up
	t.Cleanup(func() {
		if e.cancel != nil {
			e.stop()
		}
	})
	return e
}

// start runs the drain loop in the background.
func (e *env) start() {
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done = cancel, make(chan error, 1)
	go func() { e.done <- e.up.Run(ctx) }()
}

// stop cancels Run and returns how long it took to return, and its result.
func (e *env) stop() (time.Duration, error) {
	e.t.Helper()
	start := time.Now()
	e.cancel()
	e.cancel = nil
	select {
	case err := <-e.done:
		return time.Since(start), err
	case <-time.After(testsupport.Patience(10 * time.Second)):
		e.t.Fatal("Run did not return after cancel")
		return 0, nil
	}
}

// waitState blocks until record id is in state st.
func (e *env) waitState(id uint64, st outbox.State) outbox.Record {
	e.t.Helper()
	e.store.waitFor(e.t, fmt.Sprintf("record %d %s", id, st), func(s *fakeStore) bool { return s.recs[id-1].State == st })
	return e.store.get(id)
}

// waitAttempts blocks until record id has n recorded failed attempts.
func (e *env) waitAttempts(id uint64, n int) outbox.Record {
	e.t.Helper()
	e.store.waitFor(e.t, fmt.Sprintf("record %d with %d attempts", id, n), func(s *fakeStore) bool { return s.recs[id-1].Attempts >= n })
	return e.store.get(id)
}

// licences lists the driver licences the fake accepted, in order.
func (e *env) licences() []string {
	var out []string
	for _, p := range e.sim.Accepted() {
		out = append(out, p.DriverLicense)
	}
	return out
}

func licencesOf(ids ...int) []string {
	var out []string
	for _, i := range ids {
		out = append(out, event(i).DriverLicense)
	}
	return out
}

// newEnvWithSim is newEnv around a fake the test made itself.
func newEnvWithSim(t testing.TB, sim *punchsim.Server, auth Authenticator, tweak func(*Config)) *env {
	t.Helper()
	e := &env{t: t, sim: sim, clock: testsupport.NewClock(testEpoch), logs: &testsupport.SyncBuffer{}}
	e.store = newFakeStore(e.clock.Now)
	cfg := testConfig(e.sim, e.clock, e.logs)
	if tweak != nil {
		tweak(&cfg)
	}
	up, err := New(cfg, e.store, auth)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.up = up
	t.Cleanup(func() {
		if e.cancel != nil {
			e.stop()
		}
	})
	return e
}
