package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	good, err := os.ReadFile(writeRunConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.NewReplacer(
		`plate_number = "粤B12345"`, `plate_number = ""`,
		`base_url = "https://`, `base_url = "http://`,
		`[admin]`, "[uploader]\nbackoff_max = \"5 minutes\"\n[admin]",
	).Replace(string(good)) + "\n[log]\nlevel = \"chatty\"\n"
	path := filepath.Join(t.TempDir(), "agent.toml")
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err = run(context.Background(), []string{"check-config", "-config", path}, &stdout, &stderr)
	if code := exitCode(err, &stderr); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	// A bad duration is a parse problem: it is reported alone first.
	if !strings.Contains(stderr.String(), "uploader.backoff_max: bad duration \"5 minutes\"") {
		t.Fatalf("duration problem not named:\n%s", stderr.String())
	}

	bad = strings.Replace(bad, `backoff_max = "5 minutes"`, `backoff_max = "5m"`, 1)
	os.WriteFile(path, []byte(bad), 0o644)
	stderr.Reset()
	err = run(context.Background(), []string{"check-config", "-config", path}, &stdout, &stderr)
	if code := exitCode(err, &stderr); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	for _, want := range []string{"3 problem(s)", "vehicle.plate_number: missing", "wechatpay.base_url: must be https", "log.level: \"chatty\""} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("missing %q in:\n%s", want, stderr.String())
		}
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
