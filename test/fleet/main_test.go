package fleet

import (
	"testing"

	"taxi-agent/internal/punchsim"
	"taxi-agent/internal/testsupport"
	"taxi-agent/internal/uploader"
)

// testKeys are generated once per test binary (RSA key generation is slow).
var testKeys punchsim.Keys

func TestMain(m *testing.M) {
	testsupport.MainWithDir(m, "fleet-keys-", func(dir string) (err error) {
		testKeys, err = punchsim.GenerateKeys(dir)
		return err
	})
}

// directAuth is the uploaders' signing step, with the fake's keys.
func directAuth(t testing.TB) *uploader.DirectAuth {
	t.Helper()
	a, err := uploader.NewDirectAuth(uploader.DirectAuthConfig{
		MchID: testKeys.MchID, MerchantSerialNo: testKeys.MerchantSerialNo, PrivateKeyFile: testKeys.PrivateKeyFile,
		PublicKeyID: testKeys.PublicKeyID, PublicKeyFile: testKeys.PublicKeyFile,
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}
