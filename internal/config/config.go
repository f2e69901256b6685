// Package config holds the agent's TOML configuration: Default, a
// side-effect-free Parse, and Validate, which names every problem with the
// key it belongs to.
//
// The key names are a contract (configs/agent.example.toml, README.md); unknown keys are errors so
// that a typo never silently falls back to a default.
package config

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Config is the whole configuration of one terminal.
type Config struct {
	Vehicle   Vehicle   `toml:"vehicle"`
	Meter     Meter     `toml:"meter"`
	Outbox    Outbox    `toml:"outbox"`
	WeChatPay WeChatPay `toml:"wechatpay"`
	Gateway   Gateway   `toml:"gateway"`
	Uploader  Uploader  `toml:"uploader"`
	Admin     Admin     `toml:"admin"`
	Log       Log       `toml:"log"`
}

// Vehicle identifies the taxi to WeChat Pay.
type Vehicle struct {
	PlateNumber string `toml:"plate_number"` // full plate with province character, e.g. 粤B12345
	RegionID    int64  `toml:"region_id"`    // 行政区划代码, e.g. 440300
}

// Meter is the serial link to the taximeter.
type Meter struct {
	Device     string `toml:"device"`
	Baud       int    `toml:"baud"`
	Parity     string `toml:"parity"` // "none", "even" or "odd"
	StopBits   int    `toml:"stop_bits"`
	DeviceType int    `toml:"device_type"` // device byte on frames the agent sends
	Vendor     int    `toml:"vendor"`      // vendor byte on frames the agent sends
	// Identity is where the answer to the meter's "who is driving"
	// request comes from: IdentityMeter or IdentityTerminal.
	Identity string `toml:"identity"`
	// AnswerSignIn answers each sign-in (0x00E1), for meters that re-send
	// it until answered; the standard defines no answer.
	AnswerSignIn bool `toml:"answer_sign_in"`
	// Command words of sign-in, sign-out and re-sent sign-out, for meters
	// that use vendor words (docs/meter-protocol.md, "Dialects").
	SignInCommand        int `toml:"sign_in_command"`
	SignOutCommand       int `toml:"sign_out_command"`
	ResendSignOutCommand int `toml:"resend_sign_out_command"`
	// HeartbeatCountLimitWidth is the width in bytes (1 or 2) of the
	// count limit in the heartbeat answer.
	HeartbeatCountLimitWidth int `toml:"heartbeat_count_limit_width"`
}

// Sources of the driver's identity (meter.identity).
const (
	IdentityMeter    = "meter"    // the meter reads the driver's card itself
	IdentityTerminal = "terminal" // the terminal says, through `taxi-agent driver set`
)

// Outbox is the durable queue.
type Outbox struct {
	Path       string        `toml:"path"`
	MaxSizeMiB int           `toml:"max_size_mib"`
	Retention  time.Duration `toml:"retention"`
	// CommitTimeout is how long a commit may stay in flight before the
	// storage is taken as stuck: the watchdog pings stop, so that systemd
	// restarts the agent, and status says so. Keep it under WatchdogSec.
	CommitTimeout time.Duration `toml:"commit_timeout"`
}

// WeChatPay is the punch endpoint and the keys to talk to it.
type WeChatPay struct {
	BaseURL          string `toml:"base_url"`
	MchID            string `toml:"mchid"`
	MerchantSerialNo string `toml:"merchant_serial_no"`
	PrivateKeyFile   string `toml:"private_key_file"`
	PublicKeyID      string `toml:"public_key_id"`
	PublicKeyFile    string `toml:"public_key_file"`
	PlatformCertFile string `toml:"platform_cert_file"` // one or more PEM certificates
	// APIv3KeyFile holds the merchant's APIv3 key (32 characters, mode
	// 0600); set, the agent downloads the platform certificates itself.
	APIv3KeyFile string `toml:"apiv3_key_file"`
	// CertStoreFile keeps the last good downloaded certificates; empty
	// means wechatpay_platform_certs.pem next to outbox.path.
	CertStoreFile string `toml:"cert_store_file"`
	CAFile        string `toml:"ca_file"`
}

// CertStoreName is the downloaded certificates' file next to the outbox
// when wechatpay.cert_store_file is not set.
const CertStoreName = "wechatpay_platform_certs.pem"

// CertStorePath is where the downloaded platform certificates are kept:
// wechatpay.cert_store_file, or CertStoreName next to outbox.path.
func (c Config) CertStorePath() string {
	if c.WeChatPay.CertStoreFile != "" {
		return c.WeChatPay.CertStoreFile
	}
	return filepath.Join(filepath.Dir(c.Outbox.Path), CertStoreName)
}

// Gateway is taxi-gateway, in gateway mode: the terminal sends its punches
// there over mutual TLS instead of signing them for WeChat Pay itself. A
// config has either this section or [wechatpay].
type Gateway struct {
	URL      string `toml:"url"`       // https://gateway.example:8443
	CertFile string `toml:"cert_file"` // this terminal's certificate, naming its plate
	KeyFile  string `toml:"key_file"`  // its private key, mode 0600
	CAFile   string `toml:"ca_file"`   // the fleet CA that signed the gateway's certificate
}

// Enabled reports whether any gateway key is set: the config is in gateway
// mode.
func (g Gateway) Enabled() bool { return g != Gateway{} }

// Uploader tunes delivery.
type Uploader struct {
	BackoffMin     time.Duration `toml:"backoff_min"`
	BackoffMax     time.Duration `toml:"backoff_max"`
	AttemptTimeout time.Duration `toml:"attempt_timeout"`
	HeldRetry      time.Duration `toml:"held_retry"` // retry interval while WeChat Pay answers 401/403/404
	RetryAfterCap  time.Duration `toml:"retry_after_cap"`
	DrainTimeout   time.Duration `toml:"drain_timeout"` // how long shutdown waits for an in-flight upload
}

// Admin is the technician socket.
type Admin struct {
	Socket string `toml:"socket"`
}

// Log configures the daemon's logs.
type Log struct {
	Level  string `toml:"level"`  // debug, info, warn, error
	Format string `toml:"format"` // text or json
}

// Default returns the configuration with every optional key set.
func Default() Config {
	return Config{
		Meter: Meter{Device: "/dev/ttyS1", Baud: 9600, Parity: "none", StopBits: 1,
			Identity: IdentityMeter, SignInCommand: 0x00E1, SignOutCommand: 0x00E4, ResendSignOutCommand: 0x00F1,
			HeartbeatCountLimitWidth: 1},
		Outbox: Outbox{
			Path:          "/var/lib/taxi-agent/outbox.db",
			MaxSizeMiB:    64,
			Retention:     30 * 24 * time.Hour,
			CommitTimeout: 10 * time.Second,
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
// unknown-key problem at once as Problems, and returns the configuration
// with every other key decoded; it does not touch the file system.
func Parse(r io.Reader) (Config, error) {
	cfg := Default()
	text, err := io.ReadAll(r)
	if err != nil {
		return cfg, Problems{{Key: "config", Msg: err.Error(), Err: err}}
	}
	if p := decodeFile(string(text), &cfg); len(p) > 0 {
		return cfg, p
	}
	return cfg, nil
}

// Load reads, parses and validates the file at path (see Read). The error
// lists every problem of both steps at once; a key whose value could not
// be decoded is not validated again.
func Load(path string) (Config, error) {
	cfg, err := Read(path)
	var p Problems
	if err != nil && !errors.As(err, &p) {
		return cfg, err
	}
	if len(p) == 1 && (p[0].Key == "config" || p[0].Key == "toml") {
		return cfg, p // nothing was decoded
	}
	if verr := cfg.Validate(); verr != nil {
		for _, vp := range verr.(Problems) {
			if !p.has(vp.Key) {
				p = append(p, vp)
			}
		}
	}
	if len(p) > 0 {
		p.sort()
		return cfg, p
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
	cfg.resolve(filepath.Dir(path))
	return cfg, err
}

// resolve makes relative file paths relative to dir.
func (c *Config) resolve(dir string) {
	for _, p := range []*string{
		&c.Outbox.Path, &c.WeChatPay.PrivateKeyFile, &c.WeChatPay.PublicKeyFile,
		&c.WeChatPay.PlatformCertFile, &c.WeChatPay.CAFile, &c.Admin.Socket,
		&c.Gateway.CertFile, &c.Gateway.KeyFile, &c.Gateway.CAFile,
		&c.WeChatPay.APIv3KeyFile, &c.WeChatPay.CertStoreFile,
	} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
}
