package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runArgs(args ...string) (string, string, int) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, &stdout, &stderr)
	code := exitCode(err, &stderr)
	return stdout.String(), stderr.String(), code
}

func TestUsageMistakesExit2(t *testing.T) {
	for _, args := range [][]string{
		{}, {"nonsense"}, {"issue", "-out", "x"}, {"issue", "-plate", "粤B12345", "-host", "h", "-out", "x"},
		{"revoke"}, {"ca"}, {"version", "extra"},
	} {
		if _, stderr, code := runArgs(args...); code != 2 || !strings.Contains(stderr, "usage") {
			t.Errorf("%q: exit %d, stderr %q", args, code, stderr)
		}
	}
}

func TestVersionNamesGateway(t *testing.T) {
	out, _, code := runArgs("version")
	if code != 0 || !strings.HasPrefix(out, "taxi-gateway ") {
		t.Fatalf("version: %d %q", code, out)
	}
}

// TestEnrollmentFlow: ca init, issue, a bad plate refused, revoke by
// serial and by plate, an unknown serial refused.
func TestEnrollmentFlow(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca")
	if _, stderr, code := runArgs("ca", "init", "-dir", ca); code != 0 {
		t.Fatalf("ca init: %s", stderr)
	}
	if _, _, code := runArgs("ca", "init", "-dir", ca); code != 1 {
		t.Errorf("a second ca init in the same directory: exit %d, want 1", code)
	}
	out, stderr, code := runArgs("issue", "-dir", ca, "-plate", "粤B12345", "-out", filepath.Join(dir, "t"))
	if code != 0 || !strings.Contains(out, "issued ") {
		t.Fatalf("issue: %d %s %s", code, out, stderr)
	}
	fi, err := os.Stat(filepath.Join(dir, "t", "terminal.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("terminal.key: %v %v", fi.Mode(), err)
	}
	serial := strings.Fields(out)[1]
	if _, stderr, code := runArgs("issue", "-dir", ca, "-plate", "B12345", "-out", filepath.Join(dir, "u")); code != 1 || !strings.Contains(stderr, "province character") {
		t.Errorf("a plate without its province: exit %d, %s", code, stderr)
	}
	if _, stderr, code := runArgs("revoke", "-dir", ca, "ABCDEF"); code != 1 || !strings.Contains(stderr, "no such certificate") {
		t.Errorf("revoke of an unknown serial: exit %d, %s", code, stderr)
	}
	if out, stderr, code := runArgs("revoke", "-dir", ca, serial); code != 0 || !strings.Contains(out, "revoked "+serial) {
		t.Fatalf("revoke: %d %s %s", code, out, stderr)
	}
	list, _ := os.ReadFile(filepath.Join(ca, "revoked"))
	if !strings.Contains(string(list), serial) {
		t.Errorf("revocation list %q lacks %s", list, serial)
	}
}

func TestCheckConfigNamesProblems(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.toml")
	if err := os.WriteFile(path, []byte("[limit]\nrate = 0\nburst = 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runArgs("check-config", "-config", path)
	if code != 2 || !strings.Contains(stderr, "limit.burst: unknown key") {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	if err := os.WriteFile(path, []byte("[limit]\nrate = 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = runArgs("check-config", "-config", path)
	if code != 2 || !strings.Contains(stderr, "limit.rate: must be positive") || !strings.Contains(stderr, "listen.cert_file") {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
}
