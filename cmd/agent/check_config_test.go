package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"taxi-agent/internal/config"
	"taxi-agent/test/harness"
)

func TestCheckConfigOK(t *testing.T) {
	cfg := writeRunConfig(t)
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"check-config", "-config", cfg}, &stdout, &stderr); err != nil {
		t.Fatalf("check-config: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), ": ok (plate 粤B12345, region 440300") {
		t.Errorf("unexpected output: %s", stdout.String())
	}
}

// TestCheckConfigNamesEveryMistake gives a config with several mistakes and
// expects exit status 2 and one line naming each key.
func TestCheckConfigNamesEveryMistake(t *testing.T) {
	cfg, err := config.Load(writeRunConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Vehicle.PlateNumber = ""
	cfg.WeChatPay.BaseURL = strings.Replace(cfg.WeChatPay.BaseURL, "https://", "http://", 1)
	cfg.Log.Level = "chatty"
	body, err := harness.EncodeConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "agent.toml")
	check := func(body []byte) string {
		t.Helper()
		if err := os.WriteFile(path, body, 0o644); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), []string{"check-config", "-config", path}, &stdout, &stderr)
		if code := exitCode(err, &stderr); code != 2 {
			t.Fatalf("exit %d, want 2", code)
		}
		return stderr.String()
	}

	out := check(body)
	for _, want := range []string{"3 problem(s)", "vehicle.plate_number: missing", "wechatpay.base_url: must be https", "log.level: \"chatty\""} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}

	// A bad duration, a decoding problem, hides none of the others.
	badDuration := bytes.Replace(body, []byte(`backoff_max = "1s"`), []byte(`backoff_max = "5 minutes"`), 1)
	out = check(badDuration)
	for _, want := range []string{"4 problem(s)", "uploader.backoff_max: bad duration \"5 minutes\"", "vehicle.plate_number: missing"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}

// TestCheckConfigWarnsOfAbsentDevice: a USB adapter may appear after boot,
// so a device that does not exist now is a warning, and the exit status 0.
func TestCheckConfigWarnsOfAbsentDevice(t *testing.T) {
	cfg, err := config.Load(writeRunConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Meter.Device = filepath.Join(t.TempDir(), "ttyUSB0")
	body, err := harness.EncodeConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "agent.toml")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"check-config", "-config", path}, &stdout, &stderr); err != nil {
		t.Fatalf("check-config: %v\n%s", err, stderr.String())
	}
	if want := "warning: meter.device: " + cfg.Meter.Device + ": no such file or directory"; !strings.Contains(stderr.String(), want) {
		t.Errorf("want %q in stderr:\n%s", want, stderr.String())
	}
	if !strings.Contains(stdout.String(), ": ok (") {
		t.Errorf("stdout: %s", stdout.String())
	}
}

// TestDemo runs the newcomer's first command and expects its summary to be
// right.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo takes several seconds")
	}
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"demo"}, &stdout, &stderr); err != nil {
		t.Fatalf("demo failed: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	for _, want := range []string{"delivered 7, dead-lettered 1", "FORGED 204", "OK: every event"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, stdout.String())
		}
	}
}

// TestStrayArgumentIsAMistake: `check-config other.toml` (no -config) must
// not check the default file and say ok; no command ignores an argument it
// does not take.
func TestStrayArgumentIsAMistake(t *testing.T) {
	cfg := writeRunConfig(t)
	for _, args := range [][]string{
		{"check-config", cfg},
		{"run", "-config", cfg, "now"},
		{"status", "-config", cfg, "now"},
		{"version", "now"},
		{"demo", "now"},
		{"meter", "monitor", "-config", cfg, "now"},
		{"outbox", "ls", "-config", cfg, "pending"},
		{"outbox", "export", "-config", cfg, "out.csv"},
	} {
		// A command that ignored the argument would run: stop it soon.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		var stdout, stderr bytes.Buffer
		err := run(ctx, args, &stdout, &stderr)
		cancel()
		if !errors.Is(err, errUsage) || stdout.Len() > 0 || !strings.Contains(stderr.String(), "unexpected argument") {
			t.Errorf("%q: err %v, stdout %q, stderr %q; want a usage mistake naming the argument", args, err, stdout.String(), stderr.String())
		}
	}
}

// TestCheckConfigNamesBadDialect: the meter's dialect keys are checked by
// name, hex command words included.
func TestCheckConfigNamesBadDialect(t *testing.T) {
	cfg, err := config.Load(writeRunConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Meter.Identity, cfg.Meter.SignInCommand, cfg.Meter.SignOutCommand = "card", 0x00E9, 0xF0E4
	cfg.Meter.ResendSignOutCommand, cfg.Meter.HeartbeatCountLimitWidth = 0xF0E4, 3
	body, err := harness.EncodeConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "agent.toml")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err = run(context.Background(), []string{"check-config", "-config", path}, &stdout, &stderr)
	if code := exitCode(err, &stderr); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	for _, want := range []string{
		`meter.identity: "card"`,
		"meter.sign_in_command: 0x00E9 is the standard heartbeat command",
		"meter.resend_sign_out_command: 0xF0E4 is also meter.sign_out_command",
		"meter.heartbeat_count_limit_width: must be 1 or 2",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("missing %q in:\n%s", want, stderr.String())
		}
	}
}
