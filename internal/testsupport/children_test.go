package testsupport

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// startsOwnBinary matches a test starting its own binary with os/exec
// directly, which fails with "exec format error" under the emulator of the
// armv7 run.
var startsOwnBinary = regexp.MustCompile(`exec\.Command(Context)?\([^)]*os\.(Args\[0\]|Executable)`)

// TestChildrenGoThroughTheEmulator checks every test file of the module:
// a test that starts a copy of its own binary must use Command,
// CommandContext or StartChild, so that the armv7 run starts it through
// qemu as well.
func TestChildrenGoThroughTheEmulator(t *testing.T) {
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if startsOwnBinary.MatchString(line) {
				t.Errorf("%s:%d starts its own binary with os/exec; use testsupport.Command so the armv7 run starts it through qemu", path, i+1)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
