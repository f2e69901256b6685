package uploader

import (
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"taxi-agent/internal/outbox"
	"taxi-agent/internal/punch"
	"taxi-agent/internal/punchsim"
)

// secondCert is a second platform certificate, made once: a rotation's
// new certificate beside testKeys' one.
var secondCert = sync.OnceValues(func() (punchsim.PlatformCert, error) {
	now := time.Now()
	return punchsim.NewPlatformCert(now.Add(-time.Hour), now.Add(365*24*time.Hour))
})

// firstCert is testKeys' platform certificate as a PlatformCert.
func firstCert(t testing.TB, sim *punchsim.Server) punchsim.PlatformCert {
	t.Helper()
	for _, c := range sim.PlatformCerts() {
		if c.Serial == testKeys.PlatformSerialNo {
			return c
		}
	}
	t.Fatal("testKeys' certificate not served")
	return punchsim.PlatformCert{}
}

// exchangesPer counts the requests the fake got per driver licence.
func exchangesPer(sim *punchsim.Server) map[string]int {
	n := map[string]int{}
	for _, x := range sim.Exchanges() {
		if x.Punch != nil {
			n[x.Punch.DriverLicense]++
		}
	}
	return n
}

// TestFieldReportTwoCertificates is the field report: platform_cert_file
// holds the old and the new certificate, and answers come signed with
// either. In both orders of the two blocks, every answer verifies with
// the certificate its Wechatpay-Serial names: delivered once, never
// re-sent.
func TestFieldReportTwoCertificates(t *testing.T) {
	second, err := secondCert()
	if err != nil {
		t.Fatal(err)
	}
	for _, order := range []string{"old then new", "new then old"} {
		for _, signer := range []string{"old", "new"} {
			t.Run(order+", signed by "+signer, func(t *testing.T) {
				sim := newSim(t, punchsim.Options{})
				sim.AddPlatformCert(second, signer == "new")
				sim.SetAnswerSigner(punchsim.SignWithCertificate)
				first := firstCert(t, sim)
				file := filepath.Join(t.TempDir(), "wechatpay_platform.pem")
				blocks := []punchsim.PlatformCert{first, second}
				if order == "new then old" {
					blocks = []punchsim.PlatformCert{second, first}
				}
				if err := punchsim.WriteCertFile(file, blocks...); err != nil {
					t.Fatal(err)
				}
				auth, err := NewDirectAuth(DirectAuthConfig{
					MchID: testKeys.MchID, MerchantSerialNo: testKeys.MerchantSerialNo,
					PrivateKeyFile: testKeys.PrivateKeyFile, PlatformCertFile: file,
				})
				if err != nil {
					t.Fatal(err)
				}
				if got := serialsOf(auth.Keys()); !slices.Equal(got, []string{blocks[0].Serial, blocks[1].Serial}) {
					t.Fatalf("keys %v, want both certificates of the file", got)
				}
				e := newEnvWithSim(t, sim, auth, nil)
				ids := e.store.add(event(1), event(2), event(3))
				e.start()
				for _, id := range ids {
					if rec := e.waitState(id, outbox.Delivered); rec.Attempts != 1 {
						t.Errorf("record %d took %d attempts, want 1: no failed one", id, rec.Attempts)
					}
				}
				for lic, n := range exchangesPer(sim) {
					if n != 1 {
						t.Errorf("%s sent %d times", lic, n)
					}
				}
				if st := e.up.Status(); st.UnverifiedAnswers != 0 {
					t.Errorf("%d unverified answers", st.UnverifiedAnswers)
				}
			})
		}
	}
}

// TestMigrationToPublicKey: the terminal has the platform certificate and
// the public key; midway through a backlog the merchant switches WeChat
// Pay to public-key-signed answers. Nothing blocks, nothing is sent twice.
func TestMigrationToPublicKey(t *testing.T) {
	sim := newSim(t, punchsim.Options{})
	sim.SetAnswerSigner(punchsim.SignWithCertificate)
	auth, err := NewDirectAuth(DirectAuthConfig{
		MchID: testKeys.MchID, MerchantSerialNo: testKeys.MerchantSerialNo, PrivateKeyFile: testKeys.PrivateKeyFile,
		PublicKeyID: testKeys.PublicKeyID, PublicKeyFile: testKeys.PublicKeyFile, PlatformCertFile: testKeys.PlatformCertFile,
	})
	if err != nil {
		t.Fatalf("public key and platform certificate together: %v", err)
	}
	sim.SetFaults(func(x punchsim.Exchange) punchsim.Fault {
		if x.Seq == 10 {
			sim.SetAnswerSigner(punchsim.SignWithPublicKey) // the switch, mid-backlog
		}
		return punchsim.Fault{}
	})
	e := newEnvWithSim(t, sim, auth, nil)
	var evs []punch.Event
	for i := 1; i <= 20; i++ {
		evs = append(evs, event(i))
	}
	e.store.add(evs...)
	e.start()
	e.waitState(20, outbox.Delivered)
	want := make([]int, 20)
	for i := range want {
		want[i] = i + 1
	}
	if got := e.licences(); !slices.Equal(got, licencesOf(want...)) {
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
	if st := e.up.Status(); st.UnverifiedAnswers != 0 || st.Delivered != 20 {
		t.Errorf("status %+v", st)
	}
}
