package powercut

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var (
	cuts   = flag.Int("powercut.cuts", 0, "power cuts to make; 0 skips the suite (scripts/powercut.sh N runs it)")
	mutant = flag.String("powercut.mutant", "", "run a mutant that the suite must catch: nosync, ackfirst or nobarrier")
	kernel = flag.String("powercut.kernel", "/var/cache/taxi-agent-vm/kernel",
		"root of an extracted Debian linux-image package (boot/vmlinuz-*, lib/modules/*)")
	seed  = flag.Uint64("powercut.seed", 0, "seed of the cut schedule and of torn writes; 0 picks one (it is printed)")
	accel = flag.String("powercut.accel", "", "qemu accelerator: tcg (the default) or kvm")
)

// mutantTags maps a mutant to the build tag that makes it; nobarrier is a
// mount option, not a build.
var mutantTags = map[string]string{
	"":          "",
	"nosync":    "powercut_mutant_nosync",
	"ackfirst":  "powercut_mutant_ackfirst",
	"nobarrier": "",
}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(m.Run())
}

// buildStatic builds a package as a static linux/amd64 binary into dir.
func buildStatic(dir, pkg, tags string) (string, error) {
	out := filepath.Join(dir, filepath.Base(pkg))
	// Stripped: a smaller initramfs boots faster under emulation.
	args := []string{"build", "-trimpath", "-ldflags=-s -w", "-o", out}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %w\n%s", pkg, err, strings.TrimSpace(string(b)))
	}
	return out, nil
}
