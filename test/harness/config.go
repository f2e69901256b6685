package harness

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"taxi-agent/internal/config"
	"taxi-agent/internal/punchsim"
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

// EncodeConfig renders c as the TOML file `agent run -config` reads, with
// the key names of configs/agent.example.toml.
func EncodeConfig(c config.Config) ([]byte, error) {
	dur := func(d time.Duration) string { return d.String() }
	doc := map[string]map[string]any{
		"vehicle": {"plate_number": c.Vehicle.PlateNumber, "region_id": c.Vehicle.RegionID},
		"meter": {
			"device": c.Meter.Device, "baud": c.Meter.Baud, "parity": c.Meter.Parity,
			"stop_bits": c.Meter.StopBits, "device_type": c.Meter.DeviceType, "vendor": c.Meter.Vendor,
		},
		"outbox": {"path": c.Outbox.Path, "max_size_mib": c.Outbox.MaxSizeMiB, "retention": dur(c.Outbox.Retention)},
		"wechatpay": nonEmpty(map[string]any{
			"base_url": c.WeChatPay.BaseURL, "mchid": c.WeChatPay.MchID,
			"merchant_serial_no": c.WeChatPay.MerchantSerialNo, "private_key_file": c.WeChatPay.PrivateKeyFile,
			"public_key_id": c.WeChatPay.PublicKeyID, "public_key_file": c.WeChatPay.PublicKeyFile,
			"platform_cert_file": c.WeChatPay.PlatformCertFile, "ca_file": c.WeChatPay.CAFile,
		}),
		"uploader": {
			"backoff_min": dur(c.Uploader.BackoffMin), "backoff_max": dur(c.Uploader.BackoffMax),
			"attempt_timeout": dur(c.Uploader.AttemptTimeout), "held_retry": dur(c.Uploader.HeldRetry),
			"retry_after_cap": dur(c.Uploader.RetryAfterCap), "drain_timeout": dur(c.Uploader.DrainTimeout),
		},
		"admin": {"socket": c.Admin.Socket},
		"log":   {"level": c.Log.Level, "format": c.Log.Format},
	}
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(doc); err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	return buf.Bytes(), nil
}

// nonEmpty drops the empty strings: an unset optional key.
func nonEmpty(m map[string]any) map[string]any {
	for k, v := range m {
		if v == "" {
			delete(m, k)
		}
	}
	return m
}

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
