package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"taxi-agent/internal/config"
	"taxi-agent/internal/punchsim"
	"taxi-agent/internal/simrig"
)

// Vehicle of every test config.
const (
	Plate    = "粤B12345"
	RegionID = 440300
)

// NewConfig returns a config for an agent whose files live in dir, talking
// to the fake endpoint at url with keys and to the meter at device. Waits
// are short, so that a test sees several retries in a second: backoff
// 100 ms to 1 s, attempt timeout 2 s, Retry-After capped at 2 s, drain
// deadline 5 s.
func NewConfig(dir string, keys punchsim.Keys, url, device string) config.Config {
	cfg := config.Default()
	cfg.Vehicle = config.Vehicle{PlateNumber: Plate, RegionID: RegionID}
	cfg.Meter.Device = device
	cfg.Outbox.Path = filepath.Join(dir, "outbox.db")
	cfg.WeChatPay = keys.WeChatPay(url)
	cfg.Uploader.BackoffMin = 100 * time.Millisecond
	cfg.Uploader.BackoffMax = time.Second
	cfg.Uploader.AttemptTimeout = 2 * time.Second
	cfg.Uploader.HeldRetry = 2 * time.Second
	cfg.Uploader.RetryAfterCap = 2 * time.Second
	cfg.Uploader.DrainTimeout = 5 * time.Second
	cfg.Admin.Socket = filepath.Join(dir, "admin.sock")
	cfg.Log.Level = "debug"
	return cfg
}

// EncodeConfig renders c as the TOML file `agent run -config` reads, as the
// bench rig writes it (simrig.EncodeConfig).
func EncodeConfig(c config.Config) ([]byte, error) { return simrig.EncodeConfig(c) }

// WriteConfigFile writes c as TOML to path.
func WriteConfigFile(path string, c config.Config) error {
	data, err := EncodeConfig(c)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// WriteConfig writes c as TOML to path and checks that the agent's own
// loader reads it back unchanged.
func WriteConfig(tb testing.TB, path string, c config.Config) {
	tb.Helper()
	if err := WriteConfigFile(path, c); err != nil {
		tb.Fatal(err)
	}
	back, err := config.Load(path)
	if err != nil {
		tb.Fatalf("load written config %s: %v", path, err)
	}
	if back != c {
		tb.Fatalf("config %s reads back as\n%+v\nwant\n%+v", path, back, c)
	}
}
