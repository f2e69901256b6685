package daemon

import (
	"log/slog"
	"strings"

	"taxi-agent/internal/config"
	"taxi-agent/internal/meter"
	"taxi-agent/internal/outbox"
	"taxi-agent/internal/stamp"
	"taxi-agent/internal/uploader"
	"taxi-agent/internal/version"
	"taxi-agent/internal/wechatpay"
)

func directAuthConfig(c config.Config, server *wechatpay.ServerClock, log *slog.Logger) uploader.DirectAuthConfig {
	w := c.WeChatPay
	dc := uploader.DirectAuthConfig{
		MchID:            w.MchID,
		MerchantSerialNo: w.MerchantSerialNo,
		PrivateKeyFile:   w.PrivateKeyFile,
		PublicKeyID:      w.PublicKeyID,
		PublicKeyFile:    w.PublicKeyFile,
		PlatformCertFile: w.PlatformCertFile,
		APIv3KeyFile:     w.APIv3KeyFile,
		BaseURL:          w.BaseURL,
		CAFile:           w.CAFile,
		ServerClock:      server,
		Logger:           log,
	}
	if w.APIv3KeyFile != "" {
		dc.CertStoreFile = c.CertStorePath()
	}
	return dc
}

// newAuth is the uploader's authentication for the config's mode: the
// terminal's certificate towards taxi-gateway, or the merchant key.
func newAuth(c config.Config, server *wechatpay.ServerClock, log *slog.Logger) (uploader.Authenticator, error) {
	if c.Gateway.Enabled() {
		return uploader.NewGatewayAuth(uploader.GatewayAuthConfig{
			CertFile: c.Gateway.CertFile, KeyFile: c.Gateway.KeyFile, CAFile: c.Gateway.CAFile,
		})
	}
	return uploader.NewDirectAuth(directAuthConfig(c, server, log))
}

// endpoint is where punches go: the gateway, or WeChat Pay.
func endpoint(c config.Config) string {
	if c.Gateway.Enabled() {
		return c.Gateway.URL
	}
	return c.WeChatPay.BaseURL
}

func uploaderConfig(c config.Config, clock *stamp.Clock, log *slog.Logger) uploader.Config {
	ulog := log
	caFile := c.WeChatPay.CAFile
	if c.Gateway.Enabled() {
		caFile = "" // the fleet CA, through GatewayAuth
	}
	return uploader.Config{
		BaseURL:        endpoint(c),
		CAFile:         caFile,
		UserAgent:      "taxi-agent/" + version.Get().Version,
		BackoffMin:     c.Uploader.BackoffMin,
		BackoffMax:     c.Uploader.BackoffMax,
		HeldRetry:      c.Uploader.HeldRetry,
		RetryAfterCap:  c.Uploader.RetryAfterCap,
		AttemptTimeout: c.Uploader.AttemptTimeout,
		ShutdownGrace:  c.Uploader.DrainTimeout,
		// taxi-gateway spreads its 429s' Retry-After over the fleet itself.
		SpreadRetryAfter: c.Gateway.Enabled(),
		Stamp: func(r outbox.Record) (string, bool) {
			t, exact, ok := clock.Resolve(r.BootID, r.Monotonic)
			if ok && !exact {
				ulog.Warn("held event stamped with the current time: the terminal rebooted before its clock was set",
					"id", r.ID, "event_time", t)
			}
			return t, ok
		},
		Logger: ulog,
	}
}

func portConfig(m config.Meter) meter.PortConfig {
	return meter.PortConfig{
		Device:   m.Device,
		Baud:     m.Baud,
		Parity:   strings.ToLower(m.Parity),
		StopBits: m.StopBits,
	}
}

func dialect(m config.Meter) meter.Dialect {
	return meter.Dialect{
		SignIn:          uint16(m.SignInCommand),
		SignOut:         uint16(m.SignOutCommand),
		SignOutResend:   uint16(m.ResendSignOutCommand),
		AnswerSignIn:    m.AnswerSignIn,
		CountLimitWidth: m.HeartbeatCountLimitWidth,
	}
}
