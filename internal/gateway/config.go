package gateway

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/BurntSushi/toml"

	"taxi-agent/internal/config"
)

// Config is taxi-gateway's configuration (TOML, -config FILE).
type Config struct {
	Listen    Listen    `toml:"listen"`
	Fleet     Fleet     `toml:"fleet"`
	WeChatPay WeChatPay `toml:"wechatpay"`
	Limit     Limit     `toml:"limit"`
	State     State     `toml:"state"`
	Log       Log       `toml:"log"`
}

// Listen is where terminals and Prometheus reach the gateway.
type Listen struct {
	Addr        string `toml:"addr"`         // terminals' HTTPS with mutual TLS, e.g. ":8443"
	CertFile    string `toml:"cert_file"`    // the gateway's certificate, issued by the fleet CA
	KeyFile     string `toml:"key_file"`     // its key, mode 0600
	MetricsAddr string `toml:"metrics_addr"` // plain HTTP /metrics; "" for none
}

// Fleet is the fleet CA's directory: ca.pem, issued.jsonl and the
// revocation list (see CA).
type Fleet struct {
	CADir          string `toml:"ca_dir"`
	RevocationFile string `toml:"revocation_file"` // default CA_DIR/revoked
}

// WeChatPay is the punch endpoint and the merchant key: the keys of the
// agent's [wechatpay] section, plus the gateway's timeout per call.
type WeChatPay struct {
	BaseURL          string   `toml:"base_url"`
	MchID            string   `toml:"mchid"`
	MerchantSerialNo string   `toml:"merchant_serial_no"`
	PrivateKeyFile   string   `toml:"private_key_file"`
	PublicKeyID      string   `toml:"public_key_id"`
	PublicKeyFile    string   `toml:"public_key_file"`
	PlatformCertFile string   `toml:"platform_cert_file"`
	CAFile           string   `toml:"ca_file"`
	AttemptTimeout   Duration `toml:"attempt_timeout"`
}

// Limit is the fleet-wide rate.
type Limit struct {
	Rate     float64  `toml:"rate"`      // punches per second sent to WeChat Pay, all replicas together
	MaxWait  Duration `toml:"max_wait"`  // longest a punch waits for a slot before 429
	RedisURL string   `toml:"redis_url"` // shared limit across replicas; "" for in-process
	// Jitter is how much later than it left a punch may be counted at
	// WeChat Pay, unevenly (network, a busy host): the gateway keeps
	// ⌊rate⌋ punches within one second plus Jitter, so WeChat Pay never
	// counts more than rate in its second. It costs rate × Jitter/(1 s +
	// Jitter) of throughput.
	Jitter Duration `toml:"jitter"`
}

// State is where the gateway keeps what it has seen.
type State struct {
	Dir string `toml:"dir"` // terminals.json
}

// Log configures the gateway's logs.
type Log struct {
	Level  string `toml:"level"`
	Format string `toml:"format"`
}

// Duration is a time.Duration written in TOML as a string, "5s".
type Duration struct{ time.Duration }

// UnmarshalText parses "5s", "1m30s".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration such as \"5s\"", string(b))
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as "5s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// TerminalAttemptTimeout is the agent's default uploader.attempt_timeout:
// the wait for a slot plus the call to WeChat Pay must end well before a
// terminal gives up on its attempt, or the punch is delivered and the
// terminal, not knowing, sends it again.
const TerminalAttemptTimeout = 15 * time.Second

// Default returns the configuration with every optional key set.
func Default() Config {
	return Config{
		Listen:    Listen{Addr: ":8443", MetricsAddr: "127.0.0.1:9108"},
		Fleet:     Fleet{CADir: "/etc/taxi-gateway/ca"},
		WeChatPay: WeChatPay{BaseURL: "https://api.mch.weixin.qq.com", AttemptTimeout: Duration{8 * time.Second}},
		Limit:     Limit{Rate: 100, MaxWait: Duration{5 * time.Second}, Jitter: Duration{100 * time.Millisecond}},
		State:     State{Dir: "/var/lib/taxi-gateway"},
		Log:       Log{Level: "info", Format: "text"},
	}
}

// Parse reads TOML over the defaults. Syntax, type and unknown-key
// problems come back together as config.Problems.
func Parse(r io.Reader) (Config, error) {
	cfg := Default()
	md, err := toml.NewDecoder(r).Decode(&cfg)
	if err != nil {
		var pe toml.ParseError
		if ok := asParseError(err, &pe); ok {
			return cfg, config.Problems{{Key: "toml", Msg: fmt.Sprintf("line %d: %s", pe.Position.Line, pe.Message)}}
		}
		return cfg, config.Problems{{Key: "toml", Msg: err.Error()}}
	}
	var p config.Problems
	for _, k := range md.Undecoded() {
		p = append(p, config.Problem{Key: k.String(), Msg: "unknown key"})
	}
	if len(p) > 0 {
		return cfg, p
	}
	if cfg.Fleet.RevocationFile == "" && cfg.Fleet.CADir != "" {
		cfg.Fleet.RevocationFile = filepath.Join(cfg.Fleet.CADir, RevokedFile)
	}
	return cfg, nil
}

// Load reads, parses and validates the file at path; relative paths in it
// are relative to its directory.
func Load(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, config.Problems{{Key: "config", Msg: err.Error(), Err: err}}
	}
	defer f.Close()
	cfg, err := Parse(f)
	if err != nil {
		return cfg, err
	}
	cfg.resolve(filepath.Dir(path))
	return cfg, cfg.Validate()
}

func (c *Config) resolve(dir string) {
	for _, p := range []*string{
		&c.Listen.CertFile, &c.Listen.KeyFile, &c.Fleet.CADir, &c.Fleet.RevocationFile,
		&c.WeChatPay.PrivateKeyFile, &c.WeChatPay.PublicKeyFile, &c.WeChatPay.PlatformCertFile,
		&c.WeChatPay.CAFile, &c.State.Dir,
	} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
}

// agentWeChatPay is the section as the agent's validation knows it.
func (w WeChatPay) agentWeChatPay() config.WeChatPay {
	return config.WeChatPay{
		BaseURL: w.BaseURL, MchID: w.MchID, MerchantSerialNo: w.MerchantSerialNo,
		PrivateKeyFile: w.PrivateKeyFile, PublicKeyID: w.PublicKeyID, PublicKeyFile: w.PublicKeyFile,
		PlatformCertFile: w.PlatformCertFile, CAFile: w.CAFile,
	}
}

// Validate checks every key, the files it names included (the merchant key
// and the gateway's key must not be readable by group or others), and
// returns every problem at once as config.Problems.
func (c Config) Validate() error {
	var p config.Problems
	add := func(key, format string, args ...any) {
		p = append(p, config.Problem{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	if _, _, err := net.SplitHostPort(c.Listen.Addr); err != nil {
		add("listen.addr", "%q is not host:port", c.Listen.Addr)
	}
	if c.Listen.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.Listen.MetricsAddr); err != nil {
			add("listen.metrics_addr", "%q is not host:port", c.Listen.MetricsAddr)
		}
	}
	if c.Listen.CertFile == "" {
		add("listen.cert_file", "missing: the gateway's certificate (taxi-gateway issue -host …)")
	} else if err := checkReadable(c.Listen.CertFile); err != nil {
		add("listen.cert_file", "%v", err)
	}
	if c.Listen.KeyFile == "" {
		add("listen.key_file", "missing: the gateway's private key")
	} else if err := config.CheckPrivate(c.Listen.KeyFile); err != nil {
		add("listen.key_file", "%v", err)
	}
	if c.Fleet.CADir == "" {
		add("fleet.ca_dir", "missing: the fleet CA's directory (taxi-gateway ca init)")
	} else if err := checkReadable(filepath.Join(c.Fleet.CADir, CACertFile)); err != nil {
		add("fleet.ca_dir", "%v", err)
	}
	p = append(p, c.WeChatPay.agentWeChatPay().Check()...)
	if d := c.WeChatPay.AttemptTimeout.Duration; d <= 0 {
		add("wechatpay.attempt_timeout", "must be positive")
	}
	if c.Limit.Rate <= 0 {
		add("limit.rate", "must be positive (punches per second WeChat Pay allows), not %g", c.Limit.Rate)
	}
	if w := c.Limit.MaxWait.Duration; w <= 0 {
		add("limit.max_wait", "must be positive")
	} else if total := w + c.WeChatPay.AttemptTimeout.Duration; total >= TerminalAttemptTimeout {
		add("limit.max_wait", "%s plus wechatpay.attempt_timeout %s is %s: it must stay under the terminals' attempt timeout of %s",
			w, c.WeChatPay.AttemptTimeout.Duration, total, TerminalAttemptTimeout)
	}
	if j := c.Limit.Jitter.Duration; j < 0 || j >= time.Second {
		add("limit.jitter", "must be between 0s and 1s, not %s", j)
	}
	if c.Limit.RedisURL != "" {
		if u, err := url.Parse(c.Limit.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
			add("limit.redis_url", "%q is not a redis://, rediss:// or unix:// URL", c.Limit.RedisURL)
		}
	}
	if c.State.Dir == "" {
		add("state.dir", "missing")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", "%q: use debug, info, warn or error", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		add("log.format", "%q: use text or json", c.Log.Format)
	}
	if len(p) == 0 {
		return nil
	}
	sort.SliceStable(p, func(i, j int) bool { return p[i].Key < p[j].Key })
	return p
}

// checkReadable reports a file that cannot be read.
func checkReadable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return plainPathError(err)
	}
	return f.Close()
}

func plainPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %v", pe.Path, pe.Err)
	}
	return err
}

func asParseError(err error, pe *toml.ParseError) bool {
	return errors.As(err, pe)
}
