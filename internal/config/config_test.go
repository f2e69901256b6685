package config

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

// writeKeys writes a private key (0600), a public key and a certificate into
// dir and returns their paths.
func writeKeys(t testing.TB, dir string) (priv, pub, cert string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	pubDER, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "t"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, kind string, b []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: b}), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("key.pem", "PRIVATE KEY", der, 0o600),
		write("pub.pem", "PUBLIC KEY", pubDER, 0o644),
		write("cert.pem", "CERTIFICATE", certDER, 0o644)
}

func validTOML(dir string) string {
	return `
[vehicle]
plate_number = "粤B12345"
region_id = 440300
[meter]
device = "/dev/ttyS1"
[outbox]
path = "` + dir + `/outbox.db"
[wechatpay]
mchid = "1900000001"
merchant_serial_no = "3775B6A45ACD588826D15E583A95F5DD1234ABCD"
private_key_file = "key.pem"
public_key_id = "PUB_KEY_ID_0119000000012025010100000000000001"
public_key_file = "pub.pem"
`
}

func writeConfig(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "agent.toml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadValid(t *testing.T) {
	dir := t.TempDir()
	writeKeys(t, dir)
	cfg, err := Load(writeConfig(t, dir, validTOML(dir)))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.WeChatPay.PrivateKeyFile != filepath.Join(dir, "key.pem") {
		t.Errorf("relative key path not resolved: %s", cfg.WeChatPay.PrivateKeyFile)
	}
	if cfg.Meter.Baud != 9600 || cfg.Uploader.BackoffMax != 5*time.Minute || cfg.Outbox.MaxSizeMiB != 64 {
		t.Errorf("defaults not applied: %+v", cfg)
	}
	if cfg.Vehicle.RegionID != 440300 {
		t.Errorf("region_id = %d", cfg.Vehicle.RegionID)
	}
}

func TestExampleConfigParses(t *testing.T) {
	f, err := os.Open("../../configs/agent.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := Parse(f)
	if err != nil {
		t.Fatalf("example config: %v", err)
	}
	if cfg.Vehicle.PlateNumber != "粤B12345" || cfg.WeChatPay.PublicKeyID == "" {
		t.Errorf("example config parsed oddly: %+v", cfg)
	}
}

// TestEveryProblemNamed feeds a config with many mistakes and expects one
// line per mistake, each naming its key.
func TestEveryProblemNamed(t *testing.T) {
	dir := t.TempDir()
	priv, _, _ := writeKeys(t, dir)
	if err := os.Chmod(priv, 0o644); err != nil {
		t.Fatal(err)
	}
	body := `
[vehicle]
plate_number = ""
region_id = "440300"
colour = "red"
[meter]
baud = 9601
parity = "mark"
[outbox]
path = "/nonexistent/dir/outbox.db"
[wechatpay]
base_url = "http://api.mch.weixin.qq.com"
mchid = "19x"
merchant_serial_no = "ABCD1234"
private_key_file = "key.pem"
public_key_id = "PUB_KEY_ID_1"
public_key_file = "missing.pem"
[uploader]
backoff_min = "10"
backoff_max = "1s"
[bogus]
`
	// Load names every problem at once: those of decoding (wrong types,
	// unknown keys) and those of validation, each key once.
	_, err := Load(writeConfig(t, dir, body))
	assertProblems(t, err, []string{
		"bogus: unknown section",
		"vehicle.colour: unknown key",
		"vehicle.region_id: must be an integer, not a string",
		"uploader.backoff_min: bad duration",
		"vehicle.plate_number: missing",
		"meter.baud: 9601 is not a standard baud rate",
		"meter.parity:",
		"outbox.path: directory /nonexistent/dir does not exist",
		"wechatpay.base_url: must be https",
		"wechatpay.mchid:",
		"wechatpay.private_key_file: " + priv + " is accessible by group or others (mode 0644)",
		"wechatpay.public_key_file: " + filepath.Join(dir, "missing.pem") + ": no such file",
	})

	// Parse alone reports what decoding found, and decodes every other key.
	cfg, err := Parse(strings.NewReader(body))
	assertProblems(t, err, []string{"bogus: unknown section", "vehicle.colour: unknown key",
		"vehicle.region_id: must be an integer", "uploader.backoff_min: bad duration"})
	if cfg.Meter.Baud != 9601 || cfg.Uploader.BackoffMax != time.Second || cfg.Vehicle.RegionID != 0 {
		t.Errorf("keys beside the wrong ones were not decoded: %+v", cfg)
	}
}

// TestThreeProblemsThreeLines is the integrator's case: a typo'd key, a
// missing key file and a 5-digit region_id are three lines, not one.
func TestThreeProblemsThreeLines(t *testing.T) {
	dir := t.TempDir()
	writeKeys(t, dir)
	body := strings.NewReplacer("region_id = 440300", "region_id = 44030",
		"[meter]\n", "[meter]\nbuad = 9600\n",
		`public_key_file = "pub.pem"`, `public_key_file = "gone.pem"`).Replace(validTOML(dir))
	_, err := Load(writeConfig(t, dir, body))
	assertProblems(t, err, []string{"meter.buad: unknown key", "vehicle.region_id: must be a 6-digit",
		"wechatpay.public_key_file: " + filepath.Join(dir, "gone.pem") + ": no such file"})
}

// TestIntegerDurationRefused: toml would read an integer as nanoseconds.
func TestIntegerDurationRefused(t *testing.T) {
	_, err := Parse(strings.NewReader("[outbox]\nretention = 30\n[vehicle]\nregion_id = 1.5\n[log]\nlevel = 3\n"))
	assertProblems(t, err, []string{
		`outbox.retention: must be a duration string such as "30s", not an integer`,
		"vehicle.region_id: must be an integer, not a float",
		"log.level: must be a string, not an integer",
	})
}

func TestSectionNotATable(t *testing.T) {
	_, err := Parse(strings.NewReader("meter = 5\n[vehicle]\nregion_id = \"x\"\n"))
	assertProblems(t, err, []string{"meter: must be a table ([meter]), not an integer", "vehicle.region_id: must be an integer, not a string"})
}

func TestMissingDeviceIsAWarning(t *testing.T) {
	dir := t.TempDir()
	writeKeys(t, dir)
	body := strings.Replace(validTOML(dir), `device = "/dev/ttyS1"`, `device = "`+dir+`/ttyUSB7"`, 1)
	cfg, err := Load(writeConfig(t, dir, body))
	if err != nil {
		t.Fatalf("a missing device must not be an error: %v", err)
	}
	w := cfg.Warnings()
	if len(w) != 1 || w[0].Key != "meter.device" || !strings.Contains(w[0].Msg, dir+"/ttyUSB7: no such file") {
		t.Fatalf("warnings = %v", w)
	}
}

func assertProblems(t *testing.T, err error, want []string) {
	t.Helper()
	ps, ok := err.(Problems)
	if !ok {
		t.Fatalf("want Problems, got %T %v", err, err)
	}
	lines := strings.Split(ps.Error(), "\n")
	for _, w := range want {
		found := false
		for _, l := range lines {
			found = found || strings.HasPrefix(l, w)
		}
		if !found {
			t.Errorf("no problem line %q in:\n%s", w, ps.Error())
		}
	}
	if len(lines) != len(want) {
		t.Errorf("want %d problem lines, got %d:\n%s", len(want), len(lines), ps.Error())
	}
}

func TestPlatformCertMode(t *testing.T) {
	dir := t.TempDir()
	writeKeys(t, dir)
	body := strings.NewReplacer(`public_key_id = "PUB_KEY_ID_0119000000012025010100000000000001"`, "",
		`public_key_file = "pub.pem"`, `platform_cert_file = "cert.pem"`).Replace(validTOML(dir))
	if _, err := Load(writeConfig(t, dir, body)); err != nil {
		t.Fatalf("platform-cert mode: %v", err)
	}
}

func TestSyntaxErrorNamesLine(t *testing.T) {
	_, err := Parse(strings.NewReader("[vehicle]\nplate_number = \n"))
	if err == nil || !strings.Contains(err.Error(), "toml: line 2") {
		t.Fatalf("want a syntax problem naming line 2, got %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(validTOML("/tmp"))
	f.Add("[vehicle]\nregion_id = 1.5\n")
	f.Add("[uploader]\nbackoff_min = 3\n[[x]]\n")
	f.Fuzz(func(t *testing.T, s string) {
		_, err := Parse(strings.NewReader(s))
		if err != nil {
			if _, ok := err.(Problems); !ok {
				t.Fatalf("Parse returned %T, want Problems", err)
			}
		}
	})
}

// TestEveryFieldHasItsKey encodes a configuration and parses it back: a
// field without a toml tag would come back as an unknown key.
func TestEveryFieldHasItsKey(t *testing.T) {
	want := Default()
	want.Vehicle = Vehicle{PlateNumber: "粤B12345", RegionID: 440300}
	want.WeChatPay.PlatformCertFile = "/etc/taxi-agent/cert.pem"
	var buf strings.Builder
	if err := toml.NewEncoder(&buf).Encode(want); err != nil {
		t.Fatal(err)
	}
	got, err := Parse(strings.NewReader(buf.String()))
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
}

// TestMeterDialectKeys: the identity source and the dialect keys decode
// (hex command words included) and every bad value is named.
func TestMeterDialectKeys(t *testing.T) {
	cfg, err := Parse(strings.NewReader("[meter]\nidentity = \"terminal\"\nanswer_sign_in = true\nsign_in_command = 0xF0E1\n" +
		"sign_out_command = 0xF0E4\nresend_sign_out_command = 0xF0F1\nheartbeat_count_limit_width = 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.Meter
	if m.Identity != IdentityTerminal || !m.AnswerSignIn || m.SignInCommand != 0xF0E1 || m.SignOutCommand != 0xF0E4 ||
		m.ResendSignOutCommand != 0xF0F1 || m.HeartbeatCountLimitWidth != 2 {
		t.Errorf("meter %+v", m)
	}
	if d := Default().Meter; d.Identity != IdentityMeter || d.AnswerSignIn || d.SignInCommand != 0x00E1 || d.HeartbeatCountLimitWidth != 1 {
		t.Errorf("defaults %+v", d)
	}
	var p Problems
	Meter{Identity: "card", SignInCommand: 0x00E9, SignOutCommand: 0x10000, ResendSignOutCommand: 0x00E9, HeartbeatCountLimitWidth: 3}.validateDialect(&p)
	assertProblems(t, p, []string{
		`meter.identity: "card": use "meter"`,
		"meter.heartbeat_count_limit_width: must be 1 or 2 (bytes), not 3",
		"meter.sign_in_command: 0x00E9 is the standard heartbeat command",
		"meter.sign_out_command: must be a 2-byte command word",
		"meter.resend_sign_out_command: 0x00E9 is the standard heartbeat command",
	})
	p = nil
	Meter{Identity: "meter", SignInCommand: 0xF0E1, SignOutCommand: 0xF0E1, ResendSignOutCommand: 0x00F1, HeartbeatCountLimitWidth: 1}.validateDialect(&p)
	assertProblems(t, p, []string{"meter.sign_out_command: 0xF0E1 is also meter.sign_in_command"})
}

// TestCommitTimeout: outbox.commit_timeout defaults to 10 s, decodes, and
// a value too short for a slow flash card is named.
func TestCommitTimeout(t *testing.T) {
	dir := t.TempDir()
	writeKeys(t, dir)
	cfg, err := Load(writeConfig(t, dir, validTOML(dir)))
	if err != nil || cfg.Outbox.CommitTimeout != 10*time.Second {
		t.Fatalf("default commit_timeout %v (%v), want 10s", cfg.Outbox.CommitTimeout, err)
	}
	body := strings.Replace(validTOML(dir), "[outbox]\n", "[outbox]\ncommit_timeout = \"25s\"\n", 1)
	if cfg, err = Load(writeConfig(t, dir, body)); err != nil || cfg.Outbox.CommitTimeout != 25*time.Second {
		t.Fatalf("commit_timeout = %v (%v), want 25s", cfg.Outbox.CommitTimeout, err)
	}
	body = strings.Replace(validTOML(dir), "[outbox]\n", "[outbox]\ncommit_timeout = \"500ms\"\n", 1)
	_, err = Load(writeConfig(t, dir, body))
	assertProblems(t, err, []string{"outbox.commit_timeout: must be at least 1s, not 500ms"})
}
