package fleet

import (
	"fmt"
	"os"
	"testing"

	"taxi-agent/internal/punchsim"
	"taxi-agent/internal/uploader"
)

// testKeys are generated once per test binary (RSA key generation is slow).
var testKeys punchsim.Keys

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fleet-keys-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testKeys, err = punchsim.GenerateKeys(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
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
