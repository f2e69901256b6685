package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeysTogether: a public key, a certificate file with two
// certificates and an APIv3 key may all be set at once (a migration, a
// rotation, the downloader); each is checked and named when wrong.
func TestKeysTogether(t *testing.T) {
	dir := t.TempDir()
	_, _, cert := writeKeys(t, dir)
	one, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	two := filepath.Join(dir, "two.pem")
	if err := os.WriteFile(two, append(append([]byte{}, one...), one...), 0o644); err != nil {
		t.Fatal(err)
	}
	apiv3 := filepath.Join(dir, "apiv3.key")
	if err := os.WriteFile(apiv3, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	body := strings.Replace(validTOML(dir), `public_key_file = "pub.pem"`,
		`public_key_file = "pub.pem"`+"\nplatform_cert_file = \"two.pem\"\napiv3_key_file = \"apiv3.key\"", 1)
	cfg, err := Load(writeConfig(t, dir, body))
	if err != nil {
		t.Fatalf("public key, two certificates and an APIv3 key together: %v", err)
	}
	if got, want := cfg.CertStorePath(), filepath.Join(dir, CertStoreName); got != want {
		t.Errorf("CertStorePath = %s, want %s next to the outbox", got, want)
	}

	// Downloader alone is enough.
	only := strings.NewReplacer(`public_key_id = "PUB_KEY_ID_0119000000012025010100000000000001"`, "",
		`public_key_file = "pub.pem"`, `apiv3_key_file = "apiv3.key"`+"\ncert_store_file = \"certs/store.pem\"").Replace(validTOML(dir))
	_, err = Load(writeConfig(t, dir, only))
	assertProblems(t, err, []string{"wechatpay.cert_store_file: directory " + filepath.Join(dir, "certs") + " does not exist"})

	// A key among the certificates, an APIv3 key readable by others.
	bad := filepath.Join(dir, "bad.pem")
	key, _ := os.ReadFile(filepath.Join(dir, "key.pem"))
	if err := os.WriteFile(bad, append(append([]byte{}, one...), key...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(apiv3, 0o644); err != nil {
		t.Fatal(err)
	}
	body = strings.Replace(body, `"two.pem"`, `"bad.pem"`, 1)
	_, err = Load(writeConfig(t, dir, body))
	assertProblems(t, err, []string{
		"wechatpay.apiv3_key_file: " + apiv3 + " is accessible by group or others",
		"wechatpay.platform_cert_file: load platform certificates from " + bad + ": PEM block 2 is PRIVATE KEY, not CERTIFICATE",
	})
}
