package uploader

import (
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"taxi-agent/internal/outbox"
	"taxi-agent/internal/punchsim"
)

// TestClockTenMinutesBehind: the terminal's clock is 10 minutes behind
// and WeChat Pay refuses timestamps more than 5 minutes off with 401
// SIGN_ERROR. The refusal is signed: the terminal learns WeChat Pay's
// time from it, signs the next attempt with it, and the backlog drains
// after that one refused attempt. Answers are judged in WeChat Pay's
// time: a 204 stamped with the terminal's own (wrong) time is stale.
func TestClockTenMinutesBehind(t *testing.T) {
	const behind = 10 * time.Minute
	local := func() time.Time { return time.Now().Add(-behind) }
	auth, err := NewDirectAuth(DirectAuthConfig{
		MchID: testKeys.MchID, MerchantSerialNo: testKeys.MerchantSerialNo, PrivateKeyFile: testKeys.PrivateKeyFile,
		PublicKeyID: testKeys.PublicKeyID, PublicKeyFile: testKeys.PublicKeyFile, Now: local,
	})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, punchsim.Options{}, auth, nil)
	want := backlog(e, 10)
	e.start()
	e.drive(func() bool { return e.store.pending() == 0 })

	refused := 0
	for _, x := range e.sim.Exchanges() {
		if x.Status != 204 {
			refused++
			if x.Rejection != punchsim.RejectTimestamp {
				t.Errorf("refused for %s, want the timestamp", x.Rejection)
			}
		}
	}
	if refused > 1 {
		t.Fatalf("%d refused attempts, want at most 1", refused)
	}
	if got := e.licences(); !slices.Equal(got, want) {
		t.Fatalf("accepted %v, want the backlog in order", got)
	}
	st := e.up.Status()
	if st.Auth == nil || !st.Auth.ServerTime.Known || !st.Auth.CorrectedSigning ||
		math.Abs(st.Auth.ServerTime.OffsetSeconds-behind.Seconds()) > 2 {
		t.Fatalf("status does not show the offset: %+v", st.Auth)
	}
	if off, ok := auth.ServerClock().Offset(); !ok || (off-behind).Abs() > 2*time.Second {
		t.Fatalf("ServerClock offset %s %v", off, ok)
	}

	// Judged in WeChat Pay's time: a 204 signed 10 minutes in the past
	// matches the terminal's clock but is stale.
	e.sim.Inject(punchsim.Fault{Kind: punchsim.OldTimestamp})
	e.store.add(event(11))
	e.up.Wake()
	rec := e.waitAttempts(11, 1)
	if rec.LastError == nil || rec.State != outbox.Pending {
		t.Fatalf("a 204 in the terminal's time was taken: %+v", rec)
	}
	e.drive(func() bool { return e.store.pending() == 0 })
}

// TestDateIsOnlyAHint: an unsigned 401 with a Date header far from the
// local clock makes the terminal try WeChat Pay's time for signing, but
// teaches no time: only a verified answer does.
func TestDateIsOnlyAHint(t *testing.T) {
	local := func() time.Time { return time.Now().Add(-10 * time.Minute) }
	auth, err := NewDirectAuth(DirectAuthConfig{
		MchID: testKeys.MchID, MerchantSerialNo: testKeys.MerchantSerialNo, PrivateKeyFile: testKeys.PrivateKeyFile,
		PublicKeyID: testKeys.PublicKeyID, PublicKeyFile: testKeys.PublicKeyFile, Now: local,
	})
	if err != nil {
		t.Fatal(err)
	}
	sim := newSim(t, punchsim.Options{})
	resp, body := rawExchange(t, sim, auth)
	for _, h := range []string{"Wechatpay-Signature", "Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Serial"} {
		resp.Header.Del(h)
	}
	if !auth.Observe(t.Context(), resp, body) || !auth.CorrectedSigning() {
		t.Fatal("a 401 whose Date is 10 minutes off did not turn on signing with WeChat Pay's time")
	}
	if _, ok := auth.ServerClock().Now(); ok {
		t.Fatal("an unsigned Date taught WeChat Pay's time")
	}
	if d := auth.signTime().Sub(time.Now()).Abs(); d > 2*time.Second {
		t.Fatalf("signing %s off WeChat Pay's time after the hint", d)
	}
	// A forged 204 is still refused.
	resp, body = rawExchange(t, sim, auth)
	resp.Header.Set("Wechatpay-Signature", "AAAA")
	if err := auth.Verify(t.Context(), resp, body); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("Verify = %v", err)
	}
}
