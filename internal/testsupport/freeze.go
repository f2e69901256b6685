package testsupport

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// FreezableFS is an ext4 file system on a loop-mounted image that a test
// can freeze (fsfreeze): writes to it then block in the kernel, as on a
// disk that stopped answering.
type FreezableFS struct{ Dir string }

// MountFreezable mounts a fresh 64 MiB ext4 image until the test ends, or
// skips the test where it cannot (not root, no loop devices, no tools).
// The cleanup thaws it first: a frozen file system is never left behind.
func MountFreezable(t *testing.T) *FreezableFS {
	t.Helper()
	for _, tool := range []string{"mkfs.ext4", "mount", "umount", "fsfreeze"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s: cannot freeze a file system here", tool)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("not root: cannot loop-mount and freeze a file system")
	}
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "disk.img"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	if err := run("mkfs.ext4", "-q", "-F", img); err != nil {
		t.Fatal(err)
	}
	if err := run("mount", "-o", "loop", img, mnt); err != nil {
		t.Skipf("cannot loop-mount here: %v", err)
	}
	f := &FreezableFS{Dir: mnt}
	t.Cleanup(func() {
		if err := f.Thaw(); err != nil {
			t.Error(err)
		}
		if err := run("umount", mnt); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	return f
}

// Freeze freezes the file system (fsfreeze -f).
func (f *FreezableFS) Freeze(t *testing.T) {
	t.Helper()
	if err := run("fsfreeze", "-f", f.Dir); err != nil {
		t.Fatal(err)
	}
}

// Thaw thaws it (fsfreeze -u); a file system that is not frozen is left
// as it is.
func (f *FreezableFS) Thaw() error {
	out, err := exec.Command("fsfreeze", "-u", f.Dir).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "Invalid argument") { // not frozen
		return &exec.Error{Name: "fsfreeze -u: " + string(out), Err: err}
	}
	return nil
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return &exec.Error{Name: name + " " + strings.Join(args, " ") + ": " + strings.TrimSpace(string(out)), Err: err}
	}
	return nil
}
