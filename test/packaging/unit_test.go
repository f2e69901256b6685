package packaging

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// maxExposure is the bound on `systemd-analyze security` for the unit.
const maxExposure = 2.5

// drainDeadline is how long the agent takes to drain after SIGTERM.
const drainDeadline = 10 * time.Second

func unitPath(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(repoRoot(tb), "configs", "taxi-agent.service")
}

// TestUnitVerify runs `systemd-analyze verify` on the unit, with ExecStart
// pointing at a binary that exists here, and requires silence: verify exits
// 0 even for unknown keys and bad values, and only warns.
func TestUnitVerify(t *testing.T) {
	requireTool(t, "systemd-analyze", "systemd")
	unit, err := os.ReadFile(unitPath(t))
	if err != nil {
		t.Fatal(err)
	}
	// Any executable will do: verify checks that the path is executable.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const execStart = "ExecStart=/usr/bin/taxi-agent "
	if !strings.Contains(string(unit), "\n"+execStart) {
		t.Fatalf("unit has no line starting %q", execStart)
	}
	here := strings.Replace(string(unit), "\n"+execStart, "\nExecStart="+exe+" ", 1)

	if out := verify(t, here); out != "" {
		t.Errorf("systemd-analyze verify complained:\n%s", out)
	}
	// The same check must catch a mistake, or silence proves nothing.
	broken := strings.Replace(here, "\nWatchdogSec=", "\nWatchdogSecs=", 1)
	if out := verify(t, broken); !strings.Contains(out, "WatchdogSecs") {
		t.Errorf("verify of a unit with an unknown key said %q, want a complaint about it", out)
	}
}

// verify writes unit as taxi-agent.service in a temporary directory and
// returns what `systemd-analyze verify` printed; a failing exit is fatal.
func verify(tb testing.TB, unit string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "taxi-agent.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		tb.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", "--man=no", path).CombinedOutput()
	if err != nil {
		tb.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestUnitSecurity requires an overall exposure of 2.5 or lower from
// `systemd-analyze security --offline=true`.
func TestUnitSecurity(t *testing.T) {
	requireTool(t, "systemd-analyze", "systemd")
	out, err := exec.Command("systemd-analyze", "security", "--offline=true", "--no-pager", unitPath(t)).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for taxi-agent\.service: ([0-9]+\.[0-9]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no overall exposure level in:\n%s", out)
	}
	score, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("overall exposure level: %.1f (limit %.1f)", score, maxExposure)
	if score > maxExposure {
		t.Errorf("exposure %.1f > %.1f:\n%s", score, maxExposure, out)
	}
}

// TestUnitSettings checks the settings the agent's behaviour relies on,
// which verify and security cannot judge.
func TestUnitSettings(t *testing.T) {
	s := parseUnit(t, unitPath(t))
	want := map[string]string{
		"Type":                     "notify",
		"NotifyAccess":             "main",
		"ExecStart":                "/usr/bin/taxi-agent run -config /etc/taxi-agent/agent.toml",
		"User":                     "taxi-agent",
		"SupplementaryGroups":      "dialout",
		"Restart":                  "on-failure",
		"RestartPreventExitStatus": "2",
		"StateDirectory":           "taxi-agent",
		"RuntimeDirectory":         "taxi-agent",
		"NoNewPrivileges":          "yes",
		"ProtectSystem":            "strict",
		"ProtectHome":              "yes",
		"PrivateTmp":               "yes",
		"DevicePolicy":             "closed",
		"CapabilityBoundingSet":    "",
		"WantedBy":                 "multi-user.target",
	}
	for k, v := range want {
		got, ok := s[k]
		if !ok || got[len(got)-1] != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for _, dev := range []string{"char-ttyS rw", "char-ttyUSB rw", "char-ttyACM rw", "char-ttyAMA rw"} {
		if !slices.Contains(s["DeviceAllow"], dev) {
			t.Errorf("DeviceAllow lacks %q (have %q)", dev, s["DeviceAllow"])
		}
	}
	families := strings.Fields(strings.Join(s["RestrictAddressFamilies"], " "))
	for _, af := range []string{"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"} {
		if !slices.Contains(families, af) {
			t.Errorf("RestrictAddressFamilies lacks %s (have %q)", af, families)
		}
	}
	if !slices.Contains(s["SystemCallFilter"], "@system-service") {
		t.Errorf("SystemCallFilter lacks @system-service (have %q)", s["SystemCallFilter"])
	}
	// The agent reads the clock's synchronisation with a read-only
	// adjtimex: ProtectClock=yes would refuse it (systemd issue 26413), and
	// adjtimex must come after the line that denies @privileged (which
	// holds @clock), or the filter takes it away again.
	if v := s["ProtectClock"]; len(v) > 0 && v[len(v)-1] == "yes" {
		t.Error("ProtectClock=yes: a read-only adjtimex fails with EPERM and the clock's synchronisation cannot be read")
	}
	if f := s["SystemCallFilter"]; len(f) == 0 || f[len(f)-1] != "adjtimex" {
		t.Errorf("SystemCallFilter does not end with adjtimex (have %q)", f)
	}
	for _, k := range []string{"WatchdogSec", "TimeoutStopSec"} {
		if _, err := unitDuration(s, k); err != nil {
			t.Error(err)
		}
	}
	if stop, err := unitDuration(s, "TimeoutStopSec"); err == nil && stop <= drainDeadline {
		t.Errorf("TimeoutStopSec %v is not above the agent's drain deadline %v", stop, drainDeadline)
	}
}

// parseUnit reads a unit file into key -> values in order of appearance,
// ignoring sections (the unit uses no key twice across sections).
func parseUnit(tb testing.TB, path string) map[string][]string {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	s := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			tb.Fatalf("%s: malformed line %q", path, line)
		}
		s[k] = append(s[k], v)
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return s
}

// unitDuration parses a time span setting such as "30s".
func unitDuration(s map[string][]string, key string) (time.Duration, error) {
	v, ok := s[key]
	if !ok {
		return 0, fmt.Errorf("unit has no %s", key)
	}
	return time.ParseDuration(v[len(v)-1])
}
