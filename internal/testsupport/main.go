package testsupport

import (
	"fmt"
	"os"
	"testing"
)

// MainWithDir is a TestMain for a test binary whose tests share material
// made once, such as RSA keys (the slowest step of many tests): setup fills
// a new temporary directory, the tests run, the directory is removed, and
// the process exits with the tests' status. A failed setup exits 1.
func MainWithDir(m *testing.M, prefix string, setup func(dir string) error) {
	dir, err := os.MkdirTemp("", prefix)
	if err == nil {
		err = setup(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
