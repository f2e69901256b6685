package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"taxi-agent/internal/config"
	"taxi-agent/internal/gateway"
)

// gatewayConfig writes a fleet CA and a terminal enrolled with it into a
// temporary directory and returns a valid gateway-mode config file's text.
func gatewayConfig(t *testing.T) (dir, text string) {
	t.Helper()
	dir = t.TempDir()
	ca, err := gateway.InitCA(filepath.Join(dir, "ca"), "test CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.IssueTerminal("粤B12345", filepath.Join(dir, "t"), time.Now()); err != nil {
		t.Fatal(err)
	}
	text = `
[vehicle]
plate_number = "粤B12345"
region_id = 440300
[outbox]
path = "outbox.db"
[gateway]
url = "https://127.0.0.1:8443"
cert_file = "t/terminal.pem"
key_file = "t/terminal.key"
ca_file = "t/fleet-ca.pem"
`
	return dir, text
}

func load(t *testing.T, dir, text string) error {
	t.Helper()
	path := filepath.Join(dir, "agent.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := config.Load(path)
	return err
}

func TestGatewayModeValid(t *testing.T) {
	dir, text := gatewayConfig(t)
	if err := load(t, dir, text); err != nil {
		t.Fatalf("gateway-mode config refused: %v", err)
	}
}

func TestGatewayModeMistakesNamed(t *testing.T) {
	for _, tc := range []struct {
		name, edit, key, says string
	}{
		{"both sections", "\n[wechatpay]\nmchid = \"1900000001\"\n", "gateway", "not both"},
		{"plain http", "", "gateway.url", "must be https"},
		{"no key", "", "gateway.key_file", "missing"},
		{"key readable by others", "", "gateway.key_file", "group or others"},
		{"no ca", "", "gateway.ca_file", "missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, text := gatewayConfig(t)
			switch tc.name {
			case "plain http":
				text = strings.Replace(text, "https://", "http://", 1)
			case "no key":
				text = strings.Replace(text, `key_file = "t/terminal.key"`, "", 1)
			case "key readable by others":
				if err := os.Chmod(filepath.Join(dir, "t", "terminal.key"), 0o644); err != nil {
					t.Fatal(err)
				}
			case "no ca":
				text = strings.Replace(text, `ca_file = "t/fleet-ca.pem"`, "", 1)
			}
			err := load(t, dir, text+tc.edit)
			if err == nil {
				t.Fatal("accepted")
			}
			found := false
			for _, p := range err.(config.Problems) {
				if p.Key == tc.key && strings.Contains(p.Msg, tc.says) {
					found = true
				}
			}
			if !found {
				t.Fatalf("want %s: …%s…, got\n%v", tc.key, tc.says, err)
			}
		})
	}
}

func TestNeitherSectionNamesWeChatPay(t *testing.T) {
	dir, text := gatewayConfig(t)
	text = text[:strings.Index(text, "[gateway]")]
	err := load(t, dir, text)
	if err == nil || !strings.Contains(err.Error(), "wechatpay.") {
		t.Fatalf("a config with neither section: %v", err)
	}
}
