package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"time"

	"taxi-agent/internal/config"
	"taxi-agent/internal/uploader"
)

// maxIdleToWeChat is how many kept-alive connections to WeChat Pay the
// gateway keeps: the punches in flight at its rate times WeChat Pay's
// answer time, with room.
const maxIdleToWeChat = 64

// saveEvery is how often the terminals seen are written to state.dir.
const saveEvery = 10 * time.Second

// Gateway is taxi-gateway: see the package comment.
type Gateway struct {
	cfg       Config
	log       *slog.Logger
	ca        *CA
	revoked   *Revocations
	client    *uploader.Client
	queue     *Queue
	limiter   Limiter
	shared    SharedLimiter // nil without limit.redis_url
	dedup     *dedup
	terminals *terminals
	obs       Observer
	metrics   http.Handler
	tlsCert   tls.Certificate
}

// New builds a gateway from a validated cfg: it loads the fleet CA, the
// revocation list, its own certificate and the merchant key (refused when
// readable by group or others). It listens on nothing until Serve. With
// limit.redis_url set, opts.Shared must be the shared limit.
func New(cfg Config, logger *slog.Logger, userAgent string, opts Options) (*Gateway, error) {
	if logger == nil {
		logger = slog.Default()
	}
	g := &Gateway{cfg: cfg, log: logger.With("component", "gateway"), dedup: newDedup(time.Now),
		obs: opts.Observer, metrics: opts.Metrics}
	if g.obs == nil {
		g.obs = nopObserver{}
	}
	var err error
	if g.ca, err = LoadCA(cfg.Fleet.CADir, false); err != nil {
		return nil, err
	}
	if g.revoked, err = NewRevocations(cfg.Fleet.RevocationFile, g.log); err != nil {
		return nil, err
	}
	if err := config.CheckPrivate(cfg.Listen.KeyFile); err != nil {
		return nil, fmt.Errorf("load gateway key: %w", err)
	}
	if g.tlsCert, err = tls.LoadX509KeyPair(cfg.Listen.CertFile, cfg.Listen.KeyFile); err != nil {
		return nil, fmt.Errorf("load gateway certificate: %w", err)
	}
	w := cfg.WeChatPay
	auth, err := uploader.NewDirectAuth(uploader.DirectAuthConfig{
		MchID: w.MchID, MerchantSerialNo: w.MerchantSerialNo, PrivateKeyFile: w.PrivateKeyFile,
		PublicKeyID: w.PublicKeyID, PublicKeyFile: w.PublicKeyFile, PlatformCertFile: w.PlatformCertFile,
	})
	if err != nil {
		return nil, err
	}
	g.client, err = uploader.NewClient(uploader.Config{
		BaseURL: w.BaseURL, CAFile: w.CAFile, UserAgent: userAgent,
		AttemptTimeout: w.AttemptTimeout.Duration + lateAnswerWait, TransportRetries: 1, // relayOnce answers the terminal at AttemptTimeout
		MaxIdleConns: maxIdleToWeChat, WrapConn: wrapWire,
		Logger: g.log,
	}, auth)
	if err != nil {
		return nil, err
	}
	if g.terminals, err = loadTerminals(cfg.State.Dir); err != nil {
		return nil, err
	}
	g.limiter = NewLocalLimiter(cfg.Limit.Rate, cfg.Limit.Jitter.Duration)
	switch {
	case cfg.Limit.RedisURL != "" && opts.Shared == nil:
		return nil, fmt.Errorf("new gateway: limit.redis_url is set but no shared limiter was given")
	case cfg.Limit.RedisURL != "":
		g.limiter, g.shared = opts.Shared, opts.Shared
	}
	g.queue = NewQueue(cfg.Limit.Rate, cfg.Limit.MaxWait.Duration)
	return g, nil
}

// QueueDepth is the number of punches waiting for their turn.
func (g *Gateway) QueueDepth() int { return g.queue.Depth() }

// TLSConfig is the terminals' side: only certificates of the fleet CA,
// for client authentication, not revoked.
func (g *Gateway) TLSConfig() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{g.tlsCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    g.ca.Pool(),
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2", "http/1.1"},
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.VerifiedChains) == 0 {
				return errors.New("no verified client certificate")
			}
			leaf := cs.VerifiedChains[0][0]
			if s := SerialString(leaf.SerialNumber); g.revoked.Revoked(s) {
				g.obs.Punch(OutcomeRevoked)
				return fmt.Errorf("client certificate %s (%s) is revoked", s, PlateOf(leaf))
			}
			return nil
		},
	}
}

// Serve answers terminals on ln (and Prometheus on metricsLn, when not
// nil) until ctx ends, then lets the requests in flight finish (they are
// bounded by limit.max_wait and wechatpay.attempt_timeout) and saves what
// it has seen.
func (g *Gateway) Serve(ctx context.Context, ln, metricsLn net.Listener) error {
	qctx, qcancel := context.WithCancel(context.Background())
	defer qcancel()
	qdone := make(chan error, 1)
	go func() { qdone <- g.queue.Run(qctx) }()

	errLog := log.New(slogWriter{g.log.With("component", "gateway.http")}, "", 0)
	srv := &http.Server{
		Handler:           g,
		TLSConfig:         g.TLSConfig(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       20 * time.Second,
		IdleTimeout:       3 * time.Minute,
		ErrorLog:          errLog,
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(tls.NewListener(ln, srv.TLSConfig)) }()
	var msrv *http.Server
	if metricsLn != nil && g.metrics != nil {
		mux := http.NewServeMux()
		mux.Handle("/metrics", g.metrics)
		msrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: errLog}
		go func() { errc <- msrv.Serve(metricsLn) }()
	}
	g.log.Info("gateway serving", "addr", ln.Addr().String(), "wechatpay", g.client.URL(),
		"rate", g.cfg.Limit.Rate, "max_wait", g.cfg.Limit.MaxWait.Duration, "shared_limit", g.shared != nil,
		"revoked", g.revoked.Len())

	tick := time.NewTicker(saveEvery)
	defer tick.Stop()
	var err error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err = <-errc:
			break loop
		case <-tick.C:
			if serr := g.terminals.save(); serr != nil {
				g.log.Error("cannot save terminals seen", "err", serr)
			}
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), TerminalAttemptTimeout)
	defer cancel()
	_ = srv.Shutdown(sctx) // waits for the relays in flight
	if msrv != nil {
		_ = msrv.Shutdown(sctx)
	}
	qcancel()
	<-qdone
	g.client.CloseIdleConnections()
	if serr := g.terminals.save(); serr != nil {
		g.log.Error("cannot save terminals seen", "err", serr)
	}
	if g.shared != nil {
		_ = g.shared.Close()
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	g.log.Info("gateway stopped")
	return err
}

// slogWriter routes net/http's error log (TLS handshake failures: a
// terminal without a certificate, or with a revoked one) to slog.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Warn(string(trimNewline(p)))
	return len(p), nil
}

func trimNewline(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}
