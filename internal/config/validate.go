package config

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"taxi-agent/internal/wechatpay"
)

var (
	mchidPattern  = regexp.MustCompile(`^[0-9]{6,12}$`)
	serialPattern = regexp.MustCompile(`^[0-9A-Fa-f]{8,64}$`)
	platePattern  = regexp.MustCompile(`^\p{Han}[A-Z][A-Z0-9]{4,6}[挂学警港澳]?$`)
)

// Validate checks every key, including that the files it names exist with
// safe permissions, and returns all problems at once.
func (c Config) Validate() error {
	var p Problems

	switch plate := c.Vehicle.PlateNumber; {
	case plate == "":
		p.add("vehicle.plate_number", "missing: set the full plate with its province character, e.g. \"粤B12345\"")
	case !platePattern.MatchString(plate):
		p.add("vehicle.plate_number", "%q is not a full plate: it must start with the province character, e.g. \"粤B12345\" or \"粤BD12345\"", plate)
	}
	if r := c.Vehicle.RegionID; r < 100000 || r > 999999 {
		p.add("vehicle.region_id", "must be a 6-digit administrative division code (行政区划代码) such as 440300, not %d", r)
	}

	if c.Meter.Device == "" {
		p.add("meter.device", "missing: the serial device of the taximeter, e.g. /dev/ttyS1")
	}
	switch c.Meter.Baud {
	case 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200:
	default:
		p.add("meter.baud", "%d is not a standard baud rate (1200 … 115200; meters use 9600)", c.Meter.Baud)
	}
	switch strings.ToLower(c.Meter.Parity) {
	case "none", "even", "odd":
	default:
		p.add("meter.parity", "%q: use \"none\", \"even\" or \"odd\"", c.Meter.Parity)
	}
	if c.Meter.StopBits != 1 && c.Meter.StopBits != 2 {
		p.add("meter.stop_bits", "must be 1 or 2, not %d", c.Meter.StopBits)
	}
	for key, v := range map[string]int{"meter.device_type": c.Meter.DeviceType, "meter.vendor": c.Meter.Vendor} {
		if v < 0 || v > 255 {
			p.add(key, "must be a byte (0-255), not %d", v)
		}
	}
	c.Meter.validateDialect(&p)

	if c.Outbox.Path == "" {
		p.add("outbox.path", "missing")
	} else if dir := filepath.Dir(c.Outbox.Path); !isDir(dir) {
		p.add("outbox.path", "directory %s does not exist", dir)
	}
	if c.Outbox.MaxSizeMiB < 1 {
		p.add("outbox.max_size_mib", "must be at least 1, not %d", c.Outbox.MaxSizeMiB)
	}
	if c.Outbox.Retention <= 0 {
		p.add("outbox.retention", "must be positive")
	}
	if c.Outbox.CommitTimeout < time.Second {
		p.add("outbox.commit_timeout", "must be at least 1s, not %s: a commit on a slow flash card takes hundreds of milliseconds", c.Outbox.CommitTimeout)
	}

	switch {
	case c.Gateway.Enabled() && c.WeChatPay != Default().WeChatPay:
		p.add("gateway", "set either [gateway] (gateway mode: the merchant key stays on taxi-gateway) or [wechatpay] (direct mode), not both")
		c.Gateway.validate(&p)
	case c.Gateway.Enabled():
		c.Gateway.validate(&p)
	default:
		c.WeChatPay.validate(&p)
	}

	u := c.Uploader
	for key, d := range map[string]interface{ Seconds() float64 }{
		"uploader.backoff_min": u.BackoffMin, "uploader.backoff_max": u.BackoffMax,
		"uploader.attempt_timeout": u.AttemptTimeout, "uploader.held_retry": u.HeldRetry,
		"uploader.retry_after_cap": u.RetryAfterCap, "uploader.drain_timeout": u.DrainTimeout,
	} {
		if d.Seconds() <= 0 {
			p.add(key, "must be positive")
		}
	}
	if u.BackoffMin > u.BackoffMax {
		p.add("uploader.backoff_min", "%s is above uploader.backoff_max (%s)", u.BackoffMin, u.BackoffMax)
	}

	if c.Admin.Socket == "" {
		p.add("admin.socket", "missing")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		p.add("log.level", "%q: use debug, info, warn or error", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		p.add("log.format", "%q: use text or json", c.Log.Format)
	}

	if len(p) > 0 {
		p.sort()
		return p
	}
	return nil
}

func (w WeChatPay) validate(p *Problems) {
	if u, err := url.Parse(w.BaseURL); err != nil || u.Host == "" {
		p.add("wechatpay.base_url", "%q is not a URL", w.BaseURL)
	} else if u.Scheme != "https" {
		p.add("wechatpay.base_url", "must be https (TLS is always verified), not %s", u.Scheme)
	}
	if !mchidPattern.MatchString(w.MchID) {
		p.add("wechatpay.mchid", "%q is not a merchant id (digits only)", w.MchID)
	}
	if !serialPattern.MatchString(w.MerchantSerialNo) {
		p.add("wechatpay.merchant_serial_no", "%q is not a certificate serial number (hex)", w.MerchantSerialNo)
	}
	if w.PrivateKeyFile == "" {
		p.add("wechatpay.private_key_file", "missing: the merchant API private key (apiclient_key.pem)")
	} else if err := checkPrivateKey(w.PrivateKeyFile); err != nil {
		p.add("wechatpay.private_key_file", "%v", err)
	}

	// Every key set here verifies answers, together: a public key and
	// platform certificates at once is how a migration goes without a
	// flag day, and the APIv3 key downloads the certificates.
	pubKeyMode := w.PublicKeyID != "" || w.PublicKeyFile != ""
	if pubKeyMode {
		if !strings.HasPrefix(w.PublicKeyID, "PUB_KEY_ID_") {
			p.add("wechatpay.public_key_id", "%q must start with PUB_KEY_ID_", w.PublicKeyID)
		}
		if w.PublicKeyFile == "" {
			p.add("wechatpay.public_key_file", "missing: the WeChat Pay public key (pub_key.pem) that goes with public_key_id")
		} else if err := checkPEM(w.PublicKeyFile, "PUBLIC KEY"); err != nil {
			p.add("wechatpay.public_key_file", "%v", err)
		}
	}
	if w.PlatformCertFile != "" {
		if _, err := wechatpay.LoadCertificates(w.PlatformCertFile); err != nil {
			p.add("wechatpay.platform_cert_file", "%v", plainPathError(err))
		}
	}
	if w.APIv3KeyFile != "" {
		if err := CheckPrivate(w.APIv3KeyFile); err != nil {
			p.add("wechatpay.apiv3_key_file", "%v", err)
		} else if _, err := wechatpay.ReadAPIv3Key(w.APIv3KeyFile); err != nil {
			p.add("wechatpay.apiv3_key_file", "%v", plainPathError(err))
		}
	}
	if w.CertStoreFile != "" && !isDir(filepath.Dir(w.CertStoreFile)) {
		p.add("wechatpay.cert_store_file", "directory %s does not exist", filepath.Dir(w.CertStoreFile))
	}
	if !pubKeyMode && w.PlatformCertFile == "" && w.APIv3KeyFile == "" {
		p.add("wechatpay.public_key_id", "missing: set public_key_id and public_key_file (WeChat Pay public key), platform_cert_file, or apiv3_key_file (download the platform certificates); several may be set together")
	}
	if w.CAFile != "" {
		if err := checkPEM(w.CAFile, "CERTIFICATE"); err != nil {
			p.add("wechatpay.ca_file", "%v", err)
		}
	}
}

func (g Gateway) validate(p *Problems) {
	if u, err := url.Parse(g.URL); g.URL == "" {
		p.add("gateway.url", "missing: the gateway's address, e.g. \"https://gateway.example:8443\"")
	} else if err != nil || u.Host == "" {
		p.add("gateway.url", "%q is not a URL", g.URL)
	} else if u.Scheme != "https" {
		p.add("gateway.url", "must be https (mutual TLS), not %s", u.Scheme)
	} else if (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		p.add("gateway.url", "%q: give the scheme, host and port only", g.URL)
	}
	if g.CertFile == "" {
		p.add("gateway.cert_file", "missing: this terminal's certificate (taxi-gateway issue -plate …)")
	} else if err := checkPEM(g.CertFile, "CERTIFICATE"); err != nil {
		p.add("gateway.cert_file", "%v", err)
	}
	if g.KeyFile == "" {
		p.add("gateway.key_file", "missing: this terminal's private key")
	} else if err := checkPrivateKey(g.KeyFile); err != nil {
		p.add("gateway.key_file", "%v", err)
	}
	if g.CAFile == "" {
		p.add("gateway.ca_file", "missing: the fleet CA certificate (fleet-ca.pem)")
	} else if err := checkPEM(g.CAFile, "CERTIFICATE"); err != nil {
		p.add("gateway.ca_file", "%v", err)
	}
}

// ErrKeyPermissions means a secret file (a private key, the APIv3 key) is
// readable by group or others.
var ErrKeyPermissions = errors.New("private key is accessible by group or others")

// CheckPrivate insists, as ssh does, that nobody but the owner can read a
// secret file. The error names the file and its mode, says how to fix it,
// and wraps ErrKeyPermissions; a file that cannot be stat'ed is named with
// the system's reason.
func CheckPrivate(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return plainPathError(err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s is accessible by group or others (mode %04o): run chmod 600 %s: %w", path, perm, path, ErrKeyPermissions)
	}
	return nil
}

// checkPrivateKey insists that nobody but the owner can read the merchant
// key (CheckPrivate), and that it parses.
func checkPrivateKey(path string) error {
	if err := CheckPrivate(path); err != nil {
		return err
	}
	return checkPEM(path, "PRIVATE KEY")
}

// checkPEM reads path and checks it holds a PEM block of the wanted kind
// that Go can parse.
func checkPEM(path, kind string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return plainPathError(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return fmt.Errorf("%s holds no PEM data", path)
	}
	switch kind {
	case "PRIVATE KEY":
		if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
			if _, err1 := x509.ParsePKCS1PrivateKey(block.Bytes); err1 != nil {
				return fmt.Errorf("%s is not an RSA private key: %v", path, err)
			}
		}
	case "PUBLIC KEY":
		if _, err := x509.ParsePKIXPublicKey(block.Bytes); err != nil {
			return fmt.Errorf("%s is not a public key: %v", path, err)
		}
	case "CERTIFICATE":
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Errorf("%s is not a certificate: %v", path, err)
		}
	}
	return nil
}

func plainPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %v", pe.Path, pe.Err)
	}
	return err
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// Warnings lists what is not wrong in the file but may matter at run time,
// as Problems that do not stop the agent: a meter device that does not
// exist now (a USB serial adapter may appear after the agent starts; the
// meter link keeps retrying it).
func (c Config) Warnings() Problems {
	var p Problems
	if c.Meter.Device != "" {
		if _, err := os.Stat(c.Meter.Device); err != nil {
			p.add("meter.device", "%v (the agent keeps retrying it; a USB adapter may appear later)", plainPathError(err))
		}
	}
	return p
}

// standardCommands are the command words of the standard a vendor word
// must not take over.
var standardCommands = map[int]string{
	0x0000: "status query", 0x00E0: "sign-in request", 0x00E1: "sign-in", 0x00E3: "sign-out request",
	0x00E4: "sign-out", 0x00E8: "trip record", 0x00E9: "heartbeat", 0x00F1: "re-sent sign-out", 0x00F2: "re-sent trip record",
}

// validateDialect checks the identity source and the meter's dialect.
func (m Meter) validateDialect(p *Problems) {
	switch m.Identity {
	case IdentityMeter, IdentityTerminal:
	default:
		p.add("meter.identity", "%q: use %q (the meter reads the driver's card) or %q (set with 'taxi-agent driver set')",
			m.Identity, IdentityMeter, IdentityTerminal)
	}
	if w := m.HeartbeatCountLimitWidth; w != 1 && w != 2 {
		p.add("meter.heartbeat_count_limit_width", "must be 1 or 2 (bytes), not %d", w)
	}
	seen := map[int]string{}
	for _, c := range []struct {
		key      string
		word     int
		standard int
	}{
		{"meter.sign_in_command", m.SignInCommand, 0x00E1},
		{"meter.sign_out_command", m.SignOutCommand, 0x00E4},
		{"meter.resend_sign_out_command", m.ResendSignOutCommand, 0x00F1},
	} {
		switch name, std := standardCommands[c.word]; {
		case c.word < 1 || c.word > 0xFFFF:
			p.add(c.key, "must be a 2-byte command word (0x0001-0xFFFF), not %d", c.word)
			continue
		case std && c.word != c.standard:
			p.add(c.key, "0x%04X is the standard %s command; use the standard 0x%04X or the meter's vendor word", c.word, name, c.standard)
			continue
		}
		if other, dup := seen[c.word]; dup {
			p.add(c.key, "0x%04X is also %s", c.word, other)
			continue
		}
		seen[c.word] = c.key
	}
}
