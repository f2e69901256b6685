package uploader

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"taxi-agent/internal/outbox"
	"taxi-agent/internal/punchsim"
	"taxi-agent/internal/wechatpay"
)

// downloadAuth is DirectAuth with only the APIv3 key: every platform
// certificate comes from the fake's GET /v3/certificates.
func downloadAuth(t testing.TB, sim *punchsim.Server, store string) *DirectAuth {
	t.Helper()
	a, err := NewDirectAuth(DirectAuthConfig{
		MchID: testKeys.MchID, MerchantSerialNo: testKeys.MerchantSerialNo, PrivateKeyFile: testKeys.PrivateKeyFile,
		APIv3KeyFile: testKeys.APIv3KeyFile, CertStoreFile: store, BaseURL: sim.URL(), CAFile: testKeys.CAFile,
	})
	if err != nil {
		t.Fatalf("NewDirectAuth: %v", err)
	}
	return a
}

// TestDownloaderRotationAndRestartOffline: with the APIv3 key configured,
// the agent downloads the platform certificates with the SDK's downloader
// and keeps them on disk. WeChat Pay rotates its certificate mid-run: the
// first answer signed by the new one makes the agent fetch the list again
// and verify it, without a restart and without sending anything twice.
// After a restart with the download API unreachable, answers still verify
// from the stored set.
func TestDownloaderRotationAndRestartOffline(t *testing.T) {
	sim := newSim(t, punchsim.Options{})
	sim.SetAnswerSigner(punchsim.SignWithCertificate)
	store := filepath.Join(t.TempDir(), "wechatpay_platform_certs.pem")
	auth := downloadAuth(t, sim, store)
	if len(auth.Keys()) != 0 {
		t.Fatalf("keys before any download: %v", auth.Keys())
	}
	e := newEnvWithSim(t, sim, auth, nil)
	want := backlog(e, 10)
	e.start()
	e.waitState(5, outbox.Delivered)

	rotated, err := sim.RotatePlatformCert()
	if err != nil {
		t.Fatal(err)
	}
	e.store.add(event(11), event(12))
	e.up.Wake()
	e.store.waitFor(t, "event 12 out", func(s *fakeStore) bool { return s.recs[11].State != outbox.Pending || s.recs[10].LastError != nil })
	if r := e.store.get(11); r.LastError != nil {
		t.Fatalf("after the rotation: %+v", *r.LastError)
	}
	e.waitState(12, outbox.Delivered)
	if got, w := e.licences(), append(want, licencesOf(11, 12)...); !slices.Equal(got, w) {
		t.Fatalf("accepted %v", got)
	}
	for lic, n := range exchangesPer(sim) {
		if n != 1 {
			t.Errorf("%s sent %d times", lic, n)
		}
	}
	for _, r := range e.store.snapshot() {
		if r.Attempts != 1 {
			t.Errorf("record %d took %d attempts, want 1: no failed one", r.ID, r.Attempts)
		}
	}
	if got := serialsOf(auth.Keys()); !slices.Contains(got, rotated.Serial) || !slices.Contains(got, testKeys.PlatformSerialNo) {
		t.Fatalf("keys after the rotation %v", got)
	}
	stored, err := wechatpay.LoadCertificates(store)
	if err != nil || len(stored) != 2 {
		t.Fatalf("stored set: %d certificates, %v", len(stored), err)
	}
	st := e.up.Status()
	if st.Auth == nil || st.Auth.Download == nil || st.Auth.Download.Downloads < 2 || st.Auth.Download.LastError != "" {
		t.Fatalf("download status %+v", st.Auth)
	}
	e.stop()

	// Restart, the download API unreachable: the stored set verifies.
	sim.SetCertificatesReachable(false)
	before := len(sim.Exchanges())
	auth2 := downloadAuth(t, sim, store)
	if got := serialsOf(auth2.Keys()); len(got) != 2 {
		t.Fatalf("keys after restart: %v, want the 2 stored", got)
	}
	e2 := newEnvWithSim(t, sim, auth2, nil)
	e2.store.add(event(13), event(14))
	e2.start()
	e2.waitState(2, outbox.Delivered)
	if r := e2.store.get(1); r.Attempts != 1 {
		t.Errorf("first event after the restart took %d attempts, want 1: no failed one", r.Attempts)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if d := e2.up.Status().Auth.Download; d != nil && d.LastError != "" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if d := e2.up.Status().Auth.Download; d == nil || d.LastError == "" {
		t.Fatalf("the download was not refused: %+v", d)
	}
	punches := 0
	for _, x := range sim.Exchanges()[before:] {
		if x.Punch != nil {
			punches++
		}
	}
	if punches != 2 {
		t.Fatalf("%d punch requests after the restart, want 2", punches)
	}
}
