package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// AgentPackage is the import path of the agent's main package.
const AgentPackage = "taxi-agent/cmd/agent"

// Build compiles the agent into dir and returns the binary's path. With
// race set it is built with the race detector.
func Build(dir string, race bool) (string, error) {
	return BuildCommand(dir, AgentPackage, "agent", race)
}

// BuildCommand compiles the main package pkg into dir/name, as Build does.
func BuildCommand(dir, pkg, name string, race bool) (string, error) {
	goBin, err := goTool()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, name)
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	args = append(args, pkg)
	cmd := exec.Command(goBin, args...)
	cmd.Env = os.Environ()
	if !race {
		cmd.Env = append(cmd.Env, "CGO_ENABLED=0") // as shipped
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build %s: %w\n%s", name, err, strings.TrimSpace(string(out)))
	}
	return bin, nil
}

// MustBuild builds the agent once for a test package, from TestMain, into a
// temporary directory that lives as long as the process. It exits the
// process on failure: no test of the package can run without the binary.
func MustBuild(_ *testing.M, race bool) string {
	dir, err := os.MkdirTemp("", "taxi-agent-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.Exit(1)
	}
	bin, err := Build(dir, race)
	if err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	return bin
}

// Main is the TestMain of a suite that runs the agent binary: it builds
// the agent into *bin (with the race detector if race), runs the tests,
// removes the build and exits with the tests' status.
func Main(m *testing.M, race bool, bin *string) {
	*bin = MustBuild(m, race)
	code := m.Run()
	RemoveBuild(*bin)
	os.Exit(code)
}

// RemoveBuild removes the directory MustBuild made for bin.
func RemoveBuild(bin string) { os.RemoveAll(filepath.Dir(bin)) }

// goTool finds the go command; go test puts its own first on PATH.
func goTool() (string, error) {
	p, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("find the go command: %w", err)
	}
	return p, nil
}
