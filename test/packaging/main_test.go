package packaging

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// maxArmv7 is the limit on the armv7 binary: 12 MiB.
const maxArmv7 = 12 << 20

// binaries are the names cross-build.sh writes, with what each must be.
var binaries = []struct {
	name   string // file name in dist/
	goarch string
	goarm  string // GOARM build setting, "" when not arm
}{
	{"taxi-agent_linux_armv7", "arm", "7"},
	{"taxi-agent_linux_armv6", "arm", "6"},
	{"taxi-agent_linux_arm64", "arm64", ""},
	{"taxi-agent_linux_amd64", "amd64", ""},
}

// debs are the Debian architectures packaged, with the binary each carries.
var debs = []struct {
	arch   string // Debian architecture
	binary string // file name in dist/
}{
	{"armhf", "taxi-agent_linux_armv7"},
	{"arm64", "taxi-agent_linux_arm64"},
	{"amd64", "taxi-agent_linux_amd64"},
}

// shared is the source snapshot and the one full cross-build of it that the
// tests inspect, made on first use.
var shared struct {
	once sync.Once
	src  string // snapshot of the checkout
	dir  string // output directory
	out  string // the script's stdout and stderr
	err  error
}

var tempRoot string

func TestMain(m *testing.M) {
	code := m.Run()
	if tempRoot != "" {
		os.RemoveAll(tempRoot)
	}
	os.Exit(code)
}

// repoRoot is the module root, two levels up from this package.
func repoRoot(tb testing.TB) string {
	tb.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		tb.Fatalf("find module root: %v", err)
	}
	return root
}

// requireTool skips the test when a command it needs is not installed.
func requireTool(tb testing.TB, name, debianPackage string) {
	tb.Helper()
	if _, err := exec.LookPath(name); err != nil {
		tb.Skipf("%s not installed (Debian package %s; scripts/test.sh installs it when run as root)", name, debianPackage)
	}
}

// crossBuild returns the directory of the shared cross-build, running
// scripts/cross-build.sh (with its own reproducibility check) on a snapshot
// of the checkout the first time.
func crossBuild(tb testing.TB) string {
	tb.Helper()
	requireTool(tb, "git", "git")
	shared.once.Do(func() {
		var err error
		tempRoot, err = os.MkdirTemp("", "taxi-agent-packaging-")
		if err != nil {
			shared.err = err
			return
		}
		shared.src = filepath.Join(tempRoot, "src")
		if shared.err = snapshot(repoRoot(tb), shared.src); shared.err != nil {
			return
		}
		shared.dir = filepath.Join(tempRoot, "dist")
		shared.out, shared.err = runScript(shared.src, nil, "-o", shared.dir)
	})
	if shared.err != nil {
		tb.Fatalf("cross-build: %v\n%s", shared.err, shared.out)
	}
	return shared.dir
}

// sourceDir is the snapshot the shared cross-build was made from.
func sourceDir(tb testing.TB) string {
	tb.Helper()
	crossBuild(tb)
	return shared.src
}

// snapshot makes dst a private copy of the checkout at root: a clone of its
// HEAD with the working tree's files (tracked and untracked, not ignored)
// copied over. Every test then sees one source, even while others edit the
// shared checkout.
func snapshot(root, dst string) error {
	if out, err := exec.Command("git", "clone", "--quiet", "--shared", root, dst).CombinedOutput(); err != nil {
		return fmt.Errorf("clone %s: %v\n%s", root, err, out)
	}
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GIT_OPTIONAL_LOCKS=0")
	list, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("list files: %w", err)
	}
	// Start from nothing but .git: a file deleted in the checkout must not
	// come back from HEAD.
	entries, err := os.ReadDir(dst)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() != ".git" {
			if err := os.RemoveAll(filepath.Join(dst, e.Name())); err != nil {
				return err
			}
		}
	}
	for _, name := range strings.Split(strings.TrimRight(string(list), "\x00"), "\x00") {
		target := filepath.Join(dst, name)
		fi, err := os.Stat(filepath.Join(root, name))
		if err != nil || !fi.Mode().IsRegular() {
			continue // deleted but still in the index: cross-build.sh skips it too
		}
		data, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(target, data, fi.Mode().Perm()); err != nil {
			return err
		}
		if err := os.Chmod(target, fi.Mode().Perm()); err != nil {
			return err
		}
	}
	return nil
}

// runScript runs scripts/cross-build.sh of the tree at src with extra
// environment and returns its combined output.
func runScript(src string, env []string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(src, "scripts", "cross-build.sh"), args...)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// git runs a git command in the snapshot and returns its trimmed output.
func git(tb testing.TB, args ...string) string {
	tb.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = sourceDir(tb)
	cmd.Env = append(os.Environ(), "GIT_OPTIONAL_LOCKS=0")
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

// output runs a command and returns stdout, failing the test with stderr.
func output(tb testing.TB, name string, args ...string) string {
	tb.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// hostBinary is the cross-built binary this machine can run, if any.
func hostBinary(tb testing.TB, dist string) (string, error) {
	tb.Helper()
	for _, b := range binaries {
		if b.goarch == runtime.GOARCH && runtime.GOOS == "linux" {
			return filepath.Join(dist, b.name), nil
		}
	}
	return "", fmt.Errorf("find host binary: none of the cross-built binaries runs on %s/%s", runtime.GOOS, runtime.GOARCH)
}
