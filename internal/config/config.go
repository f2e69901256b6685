// Package config holds the agent's TOML configuration: Default, a
// side-effect-free Parse, and Validate, which names every problem with the
// key it belongs to.
//
// The key names are a contract (ARCHITECTURE.md); unknown keys are errors so
// that a typo never silently falls back to a default.
package config

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is the whole configuration of one terminal.
type Config struct {
	Vehicle   Vehicle
	Meter     Meter
	Outbox    Outbox
	WeChatPay WeChatPay
	Uploader  Uploader
	Admin     Admin
	Log       Log
}

// Vehicle identifies the taxi to WeChat Pay.
type Vehicle struct {
	PlateNumber string // full plate with province character, e.g. 粤B12345
	RegionID    int64  // 行政区划代码, e.g. 440300
}

// Meter is the serial link to the taximeter.
type Meter struct {
	Device     string
	Baud       int
	Parity     string // "none", "even" or "odd"
	StopBits   int
	DeviceType int // device byte on frames the agent sends
	Vendor     int // vendor byte on frames the agent sends
}

// Outbox is the durable queue.
type Outbox struct {
	Path       string
	MaxSizeMiB int
	Retention  time.Duration
}

// WeChatPay is the punch endpoint and the keys to talk to it.
type WeChatPay struct {
	BaseURL          string
	MchID            string
	MerchantSerialNo string
	PrivateKeyFile   string
	PublicKeyID      string
	PublicKeyFile    string
	PlatformCertFile string
	CAFile           string
}

// Uploader tunes delivery.
type Uploader struct {
	BackoffMin     time.Duration
	BackoffMax     time.Duration
	AttemptTimeout time.Duration
	HeldRetry      time.Duration // retry interval while WeChat Pay answers 401/403/404
	RetryAfterCap  time.Duration
	DrainTimeout   time.Duration // how long shutdown waits for an in-flight upload
}

// Admin is the technician socket.
type Admin struct {
	Socket string
}

// Log configures the daemon's logs.
type Log struct {
	Level  string // debug, info, warn, error
	Format string // text or json
}

// Default returns the configuration with every optional key set.
func Default() Config {
	return Config{
		Meter: Meter{Device: "/dev/ttyS1", Baud: 9600, Parity: "none", StopBits: 1},
		Outbox: Outbox{
			Path:       "/var/lib/taxi-agent/outbox.db",
			MaxSizeMiB: 64,
			Retention:  30 * 24 * time.Hour,
		},
		WeChatPay: WeChatPay{BaseURL: "https://api.mch.weixin.qq.com"},
		Uploader: Uploader{
			BackoffMin:     time.Second,
			BackoffMax:     5 * time.Minute,
			AttemptTimeout: 15 * time.Second,
			HeldRetry:      5 * time.Minute,
			RetryAfterCap:  5 * time.Minute,
			DrainTimeout:   10 * time.Second,
		},
		Admin: Admin{Socket: "/run/taxi-agent/admin.sock"},
		Log:   Log{Level: "info", Format: "text"},
	}
}

// Parse reads TOML over the defaults. It reports every syntax, type and
// unknown-key problem at once as Problems; it does not touch the file system.
func Parse(r io.Reader) (Config, error) {
	cfg := Default()
	var raw map[string]any
	if _, err := toml.NewDecoder(r).Decode(&raw); err != nil {
		return cfg, Problems{{Key: "toml", Msg: syntaxMessage(err)}}
	}
	var p Problems
	d := decoder{problems: &p}
	d.section(raw, "vehicle", func(s section) {
		s.str("plate_number", &cfg.Vehicle.PlateNumber)
		s.integer("region_id", &cfg.Vehicle.RegionID)
	})
	d.section(raw, "meter", func(s section) {
		s.str("device", &cfg.Meter.Device)
		s.num("baud", &cfg.Meter.Baud)
		s.str("parity", &cfg.Meter.Parity)
		s.num("stop_bits", &cfg.Meter.StopBits)
		s.num("device_type", &cfg.Meter.DeviceType)
		s.num("vendor", &cfg.Meter.Vendor)
	})
	d.section(raw, "outbox", func(s section) {
		s.str("path", &cfg.Outbox.Path)
		s.num("max_size_mib", &cfg.Outbox.MaxSizeMiB)
		s.duration("retention", &cfg.Outbox.Retention)
	})
	d.section(raw, "wechatpay", func(s section) {
		s.str("base_url", &cfg.WeChatPay.BaseURL)
		s.str("mchid", &cfg.WeChatPay.MchID)
		s.str("merchant_serial_no", &cfg.WeChatPay.MerchantSerialNo)
		s.str("private_key_file", &cfg.WeChatPay.PrivateKeyFile)
		s.str("public_key_id", &cfg.WeChatPay.PublicKeyID)
		s.str("public_key_file", &cfg.WeChatPay.PublicKeyFile)
		s.str("platform_cert_file", &cfg.WeChatPay.PlatformCertFile)
		s.str("ca_file", &cfg.WeChatPay.CAFile)
	})
	d.section(raw, "uploader", func(s section) {
		s.duration("backoff_min", &cfg.Uploader.BackoffMin)
		s.duration("backoff_max", &cfg.Uploader.BackoffMax)
		s.duration("attempt_timeout", &cfg.Uploader.AttemptTimeout)
		s.duration("held_retry", &cfg.Uploader.HeldRetry)
		s.duration("retry_after_cap", &cfg.Uploader.RetryAfterCap)
		s.duration("drain_timeout", &cfg.Uploader.DrainTimeout)
	})
	d.section(raw, "admin", func(s section) {
		s.str("socket", &cfg.Admin.Socket)
	})
	d.section(raw, "log", func(s section) {
		s.str("level", &cfg.Log.Level)
		s.str("format", &cfg.Log.Format)
	})
	for key := range raw {
		p.add(key, "unknown section")
	}
	if len(p) > 0 {
		p.sort()
		return cfg, p
	}
	return cfg, nil
}

// Load reads, parses and validates the file at path (see Read).
func Load(path string) (Config, error) {
	cfg, err := Read(path)
	if err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// Read reads and parses the file at path without validating it, for the
// technician's commands, which need only the outbox and socket paths and
// may not be allowed to read the key files. Relative file paths in it are
// taken relative to the file's directory. An unreadable file is a Problem
// that wraps the error, so errors.Is(err, fs.ErrPermission) works.
func Read(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, Problems{{Key: "config", Msg: err.Error(), Err: err}}
	}
	defer f.Close()
	cfg, err := Parse(f)
	if err != nil {
		return cfg, err
	}
	cfg.resolve(filepath.Dir(path))
	return cfg, nil
}

// resolve makes relative file paths relative to dir.
func (c *Config) resolve(dir string) {
	for _, p := range []*string{
		&c.Outbox.Path, &c.WeChatPay.PrivateKeyFile, &c.WeChatPay.PublicKeyFile,
		&c.WeChatPay.PlatformCertFile, &c.WeChatPay.CAFile, &c.Admin.Socket,
	} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
}

func syntaxMessage(err error) string {
	var pe toml.ParseError
	if ok := asParseError(err, &pe); ok {
		return fmt.Sprintf("line %d: %s", pe.Position.Line, pe.Message)
	}
	return err.Error()
}
