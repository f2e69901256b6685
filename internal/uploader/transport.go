package uploader

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

// wireCounter counts bytes on the wire (TLS records included) and dials.
type wireCounter struct {
	sent, received, dials atomic.Uint64
}

// countingConn is a net.Conn that adds its traffic to a wireCounter.
type countingConn struct {
	net.Conn
	c *wireCounter
}

func (cc countingConn) Read(p []byte) (int, error) {
	n, err := cc.Conn.Read(p)
	cc.c.received.Add(uint64(n))
	return n, err
}

func (cc countingConn) Write(p []byte) (int, error) {
	n, err := cc.Conn.Write(p)
	cc.c.sent.Add(uint64(n))
	return n, err
}

// rootPool is the system's roots plus those in caFile.
func rootPool(caFile string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if caFile == "" {
		return pool, nil
	}
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read ca file: %w", err)
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("read ca file %s: %w", caFile, ErrNoCertificates)
	}
	return pool, nil
}

// sessionCacheSize is how many TLS sessions the client keeps: one API
// host, a few tickets.
const sessionCacheSize = 4

// newHTTPClient builds the transport: verified TLS 1.2+ with session
// resumption, keep-alive connections, counted bytes, no redirects
// followed, and a timeout per exchange.
func newHTTPClient(cfg Config, wc *wireCounter, auth Authenticator) (*http.Client, error) {
	var (
		roots *x509.CertPool
		certs []tls.Certificate
		err   error
	)
	if ta, ok := auth.(TLSAuthenticator); ok {
		roots, certs = ta.TLSIdentity()
	} else if roots, err = rootPool(cfg.CAFile); err != nil {
		return nil, err
	}
	dialer := &net.Dialer{Timeout: min(10*time.Second, cfg.AttemptTimeout), KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			wc.dials.Add(1)
			conn = countingConn{Conn: conn, c: wc}
			if cfg.WrapConn != nil {
				conn = cfg.WrapConn(conn)
			}
			return conn, nil
		},
		TLSClientConfig: &tls.Config{
			RootCAs:      roots,
			Certificates: certs,
			MinVersion:   tls.VersionTLS12,
			// Keep the server's session tickets so that a reconnect (the
			// server or a NAT dropped the kept-alive connection) resumes
			// TLS instead of a full handshake: no certificate chain on a
			// metered SIM, and less CPU on the terminal.
			ClientSessionCache: tls.NewLRUClientSessionCache(sessionCacheSize),
		},
		TLSHandshakeTimeout:   min(10*time.Second, cfg.AttemptTimeout),
		ResponseHeaderTimeout: cfg.AttemptTimeout,
		MaxIdleConns:          cfg.MaxIdleConns,
		MaxIdleConnsPerHost:   cfg.MaxIdleConns,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   cfg.AttemptTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a redirect is an answer to classify, not to follow
		},
	}, nil
}

// retryLog routes go-retryablehttp's logging to slog at debug level: the
// drain loop logs what matters, once.
type retryLog struct{ l *slog.Logger }

func (r retryLog) Error(msg string, kv ...any) { r.l.Debug(msg, kv...) }
func (r retryLog) Info(msg string, kv ...any)  { r.l.Debug(msg, kv...) }
func (r retryLog) Debug(msg string, kv ...any) { r.l.Debug(msg, kv...) }
func (r retryLog) Warn(msg string, kv ...any)  { r.l.Debug(msg, kv...) }
