package demo

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"taxi-agent/internal/config"
	"taxi-agent/internal/gateway"
	"taxi-agent/internal/punchsim"
)

// demoGateway is taxi-gateway in front of the fake WeChat Pay, with a
// throwaway fleet CA, and the terminal's [gateway] section.
type demoGateway struct {
	section config.Gateway
	g       *gateway.Gateway
	stop    func()
}

// startGateway makes a throwaway fleet CA in dir, enrolls the gateway for
// loopback and the demo's terminal for plate, and serves the gateway,
// holding the fake's merchant key, until stop.
func startGateway(dir string, keys punchsim.Keys, wechatURL, plate string, logs *slog.Logger, s *scenario) (*demoGateway, error) {
	now := time.Now()
	caDir := filepath.Join(dir, "fleet-ca")
	ca, err := gateway.InitCA(caDir, "demo fleet CA", now)
	if err != nil {
		return nil, err
	}
	if _, err := ca.IssueServer([]string{"127.0.0.1"}, filepath.Join(dir, "gateway"), now); err != nil {
		return nil, err
	}
	rec, err := ca.IssueTerminal(plate, filepath.Join(dir, "terminal"), now)
	if err != nil {
		return nil, err
	}
	s.say("setup", "throwaway fleet CA in %s; the terminal enrolled for %s (certificate %s), the gateway for 127.0.0.1", caDir, plate, rec.Serial)

	cfg := gateway.Default()
	cfg.Listen = gateway.Listen{CertFile: filepath.Join(dir, "gateway", "gateway.pem"), KeyFile: filepath.Join(dir, "gateway", "gateway.key"), Addr: "127.0.0.1:0"}
	cfg.Fleet = gateway.Fleet{CADir: caDir, RevocationFile: filepath.Join(caDir, gateway.RevokedFile)}
	cfg.WeChatPay = gateway.WeChatPay{
		BaseURL: wechatURL, MchID: keys.MchID, MerchantSerialNo: keys.MerchantSerialNo, PrivateKeyFile: keys.PrivateKeyFile,
		PublicKeyID: keys.PublicKeyID, PublicKeyFile: keys.PublicKeyFile, CAFile: keys.CAFile,
		AttemptTimeout: gateway.Duration{Duration: 5 * time.Second},
	}
	cfg.State.Dir = dir
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("demo gateway config: %w", err)
	}
	g, err := gateway.New(cfg, logs, "taxi-gateway-demo", gateway.Options{})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = g.Serve(ctx, ln, nil); close(done) }()
	s.say("setup", "taxi-gateway on https://%s holds the merchant key; the terminal has none, only its own certificate", ln.Addr())
	return &demoGateway{
		section: config.Gateway{
			URL:      "https://" + ln.Addr().String(),
			CertFile: filepath.Join(dir, "terminal", "terminal.pem"),
			KeyFile:  filepath.Join(dir, "terminal", "terminal.key"),
			CAFile:   filepath.Join(dir, "terminal", "fleet-ca.pem"),
		},
		g:    g,
		stop: func() { cancel(); <-done },
	}, nil
}
