package gateway

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"taxi-agent/internal/punchsim"
	"taxi-agent/test/harness"
)

func TestNoClientCertificateRefused(t *testing.T) {
	g, ep := rig(t, 100)
	_, _, _, err := g.Punch(ctxT(t), g.Client(""), punchBody(harness.Plate, 1, 1))
	if err == nil {
		t.Fatal("a client without a certificate was served")
	}
	if n := ep.Stats().Requests; n != 0 {
		t.Fatalf("WeChat Pay saw %d requests", n)
	}
}

func TestCertificateOfAnotherCARefused(t *testing.T) {
	g, ep := rig(t, 100)
	other := filepath.Join(t.TempDir(), "other-ca")
	g.Cmd("ca", "init", "-dir", other)
	dir := filepath.Join(t.TempDir(), "stranger")
	g.Cmd("issue", "-dir", other, "-plate", harness.Plate, "-out", dir)
	_, _, _, err := g.Punch(ctxT(t), g.Client(dir), punchBody(harness.Plate, 1, 1))
	if err == nil {
		t.Fatal("a certificate of another CA was served")
	}
	if n := ep.Stats().Requests; n != 0 {
		t.Fatalf("WeChat Pay saw %d requests", n)
	}
}

func TestRevokedCertificateRefusedWithoutRestart(t *testing.T) {
	g, ep := rig(t, 100)
	dir := g.Enroll(harness.Plate)
	c := g.Client(dir)
	ctx := ctxT(t)
	if st, body, _, err := g.Punch(ctx, c, punchBody(harness.Plate, 1, 1)); err != nil || st != 204 {
		t.Fatalf("before revocation: %d %s %v", st, body, err)
	}
	out := g.Cmd("revoke", "-dir", g.CADir, "-plate", harness.Plate)
	if !strings.Contains(out, "revoked") {
		t.Fatalf("revoke said %q", out)
	}
	// The kept-alive connection: refused on its next request.
	st, body, _, err := g.Punch(ctx, c, punchBody(harness.Plate, 1, 2))
	if err != nil || st != 403 || !strings.Contains(body, "CERT_REVOKED") {
		t.Fatalf("revoked, same connection: %d %s %v", st, body, err)
	}
	// A new connection: refused at the handshake.
	if _, _, _, err := g.Punch(ctx, g.Client(dir), punchBody(harness.Plate, 1, 3)); err == nil {
		t.Fatal("a revoked certificate completed a new handshake")
	}
	if n := len(ep.Accepted()); n != 1 {
		t.Fatalf("WeChat Pay accepted %d punches, want the 1 before revocation", n)
	}
	// Another terminal is unaffected.
	if st, body, _, err := g.Punch(ctx, g.Client(g.Enroll("粤B54321")), punchBody("粤B54321", 2, 4)); err != nil || st != 204 {
		t.Fatalf("another terminal after the revocation: %d %s %v", st, body, err)
	}
}

func TestPlateMismatchRefusedBeforeWeChat(t *testing.T) {
	g, ep := rig(t, 100)
	c := g.Client(g.Enroll(harness.Plate))
	st, body, _, err := g.Punch(ctxT(t), c, punchBody("粤B99999", 1, 1))
	if err != nil || st != 403 {
		t.Fatalf("punch for another plate: %d %s %v", st, body, err)
	}
	for _, want := range []string{"PLATE_MISMATCH", harness.Plate, "粤B99999"} {
		if !strings.Contains(body, want) {
			t.Errorf("body %s does not say %s", body, want)
		}
	}
	if n := ep.Stats().Requests; n != 0 {
		t.Fatalf("WeChat Pay saw %d requests", n)
	}
}

func TestMerchantKeyReadableByOthersRefused(t *testing.T) {
	ep := harness.StartEndpoint(t, punchsim.Options{})
	g := harness.NewGateway(t, gatewayBin, ep, 100)
	key := g.Config.WeChatPay.PrivateKeyFile
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"check-config", "run"} {
		out, err := exec.Command(gatewayBin, cmd, "-config", g.ConfigPath).CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 {
			t.Fatalf("%s with a world-readable merchant key: %v\n%s", cmd, err, out)
		}
		if !strings.Contains(string(out), "wechatpay.private_key_file") || !strings.Contains(string(out), "group or others") {
			t.Errorf("%s does not name the key and the fault:\n%s", cmd, out)
		}
	}
	if n := ep.Stats().Requests; n != 0 {
		t.Fatalf("WeChat Pay saw %d requests", n)
	}
}
