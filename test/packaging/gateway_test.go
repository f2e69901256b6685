package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// gatewayDebs are the Debian architectures taxi-gateway is packaged for.
var gatewayDebs = []string{"amd64", "arm64"}

// gatewayBinaries are its plain binaries.
var gatewayBinaries = []string{"taxi-gateway_linux_amd64", "taxi-gateway_linux_arm64"}

func gatewayUnitPath(tb testing.TB) string {
	return filepath.Join(repoRoot(tb), "configs", "taxi-gateway.service")
}

// TestGatewayUnit: systemd-analyze verify is silent about the unit, and its
// exposure is as low as the agent's.
func TestGatewayUnit(t *testing.T) {
	requireTool(t, "systemd-analyze", "systemd")
	unit, err := os.ReadFile(gatewayUnitPath(t))
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const execStart = "ExecStart=/usr/bin/taxi-gateway "
	if !strings.Contains(string(unit), "\n"+execStart) {
		t.Fatalf("unit has no line starting %q", execStart)
	}
	path := filepath.Join(t.TempDir(), "taxi-gateway.service")
	if err := os.WriteFile(path, []byte(strings.Replace(string(unit), "\n"+execStart, "\nExecStart="+exe+" ", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("systemd-analyze", "verify", "--man=no", path).CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err := exec.Command("systemd-analyze", "security", "--offline=true", "--no-pager", gatewayUnitPath(t)).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for taxi-gateway\.service: ([0-9]+\.[0-9]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no overall exposure level in:\n%s", out)
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("overall exposure level: %.1f (limit %.1f)", score, maxExposure)
	if score > maxExposure {
		t.Errorf("exposure %.1f > %.1f:\n%s", score, maxExposure, out)
	}
	s := parseUnit(t, gatewayUnitPath(t))
	for k, v := range map[string]string{
		"Type": "notify", "User": "taxi-gateway", "RestartPreventExitStatus": "2",
		"ExecStart":       "/usr/bin/taxi-gateway run -config /etc/taxi-gateway/gateway.toml",
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateDevices": "yes", "CapabilityBoundingSet": "",
	} {
		if got, ok := s[k]; !ok || got[len(got)-1] != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

// TestGatewayDeb: the cross-build packages taxi-gateway for amd64 and arm64
// with its binary, unit and config (a conffile).
func TestGatewayDeb(t *testing.T) {
	requireTool(t, "dpkg-deb", "dpkg")
	dist := crossBuild(t)
	for _, arch := range gatewayDebs {
		t.Run(arch, func(t *testing.T) {
			matches, _ := filepath.Glob(filepath.Join(dist, "taxi-gateway_*_"+arch+".deb"))
			if len(matches) != 1 {
				t.Fatalf("taxi-gateway .deb for %s: %q", arch, matches)
			}
			deb := matches[0]
			if got := output(t, "dpkg-deb", "-f", deb, "Package", "Architecture"); got != "Package: taxi-gateway\nArchitecture: "+arch+"\n" {
				t.Errorf("control fields %q", got)
			}
			if got := output(t, "dpkg-deb", "-I", deb, "conffiles"); got != "/etc/taxi-gateway/gateway.toml\n" {
				t.Errorf("conffiles = %q", got)
			}
			list := output(t, "dpkg-deb", "-c", deb)
			for _, want := range []string{"./usr/bin/taxi-gateway", "./usr/lib/systemd/system/taxi-gateway.service", "./etc/taxi-gateway/gateway.toml"} {
				if !strings.Contains(list, want) {
					t.Errorf("package lacks %s:\n%s", want, list)
				}
			}
		})
	}
}
