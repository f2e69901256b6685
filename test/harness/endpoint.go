package harness

import (
	"path/filepath"
	"testing"

	"taxi-agent/internal/punchsim"
)

// StartEndpoint generates throwaway keys in a temporary directory and
// starts the fake punch endpoint with them on loopback. It is closed when
// the test ends.
func StartEndpoint(tb testing.TB, opts punchsim.Options) *punchsim.Server {
	tb.Helper()
	keys, err := punchsim.GenerateKeys(filepath.Join(tb.TempDir(), "keys"))
	if err != nil {
		tb.Fatalf("generate keys: %v", err)
	}
	srv, err := punchsim.New(keys, opts)
	if err != nil {
		tb.Fatalf("start fake endpoint: %v", err)
	}
	tb.Cleanup(func() { _ = srv.Close() })
	return srv
}
