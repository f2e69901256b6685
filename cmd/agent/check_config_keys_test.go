package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"taxi-agent/internal/config"
	"taxi-agent/internal/punchsim"
	"taxi-agent/test/harness"
)

// TestCheckConfigListsKeys: check-config lists every key that will verify
// answers (the public key and each certificate of the file) with its
// serial or key id and expiry, warns about a certificate that expires
// within 30 days, and refuses one already expired, naming the key.
func TestCheckConfigListsKeys(t *testing.T) {
	path := writeRunConfig(t)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	expiring, err := punchsim.NewPlatformCert(now.Add(-300*24*time.Hour), now.Add(10*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	current, err := punchsim.NewPlatformCert(now.Add(-time.Hour), now.Add(400*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	expired, err := punchsim.NewPlatformCert(now.Add(-800*24*time.Hour), now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	certs := filepath.Join(t.TempDir(), "platform.pem")
	if err := punchsim.WriteCertFile(certs, expiring, current); err != nil {
		t.Fatal(err)
	}
	cfg.WeChatPay.PlatformCertFile = certs
	harness.WriteConfig(t, path, cfg)

	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"check-config", "-config", path}, &stdout, &stderr); err != nil {
		t.Fatalf("check-config: %v\n%s", err, stderr.String())
	}
	out := stdout.String()
	line := func(words ...string) {
		t.Helper()
		for _, l := range strings.Split(out, "\n") {
			found := true
			for _, w := range words {
				found = found && strings.Contains(l, w)
			}
			if found {
				return
			}
		}
		t.Errorf("no line with %q in:\n%s", words, out)
	}
	line("answers verified with 3 key(s)")
	line("public key", cfg.WeChatPay.PublicKeyID)
	line("platform certificate", expiring.Serial, "valid until "+expiring.Cert.NotAfter.UTC().Format("2006-01-02"), certs)
	line("platform certificate", current.Serial, "valid until "+current.Cert.NotAfter.UTC().Format("2006-01-02"), certs)
	warn := "warning: wechatpay.platform_cert_file: certificate " + expiring.Serial + " expires on"
	if !strings.Contains(stderr.String(), warn) || strings.Contains(stderr.String(), current.Serial) {
		t.Errorf("want only %q in stderr:\n%s", warn, stderr.String())
	}

	if err := punchsim.WriteCertFile(certs, current, expired); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	stderr.Reset()
	err = run(context.Background(), []string{"check-config", "-config", path}, &stdout, &stderr)
	if code := exitCode(err, &stderr); code != 2 {
		t.Fatalf("exit %d with an expired certificate, want 2; stdout:\n%s", code, stdout.String())
	}
	if want := "wechatpay.platform_cert_file: certificate " + expired.Serial + " expired on"; !strings.Contains(stderr.String(), want) {
		t.Errorf("missing %q in:\n%s", want, stderr.String())
	}
}
