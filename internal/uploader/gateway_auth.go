package uploader

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
)

// TLSAuthenticator is an Authenticator that authenticates at the TLS
// layer: the punch client trusts only its roots (not the system's) and
// presents its certificates.
type TLSAuthenticator interface {
	Authenticator
	// TLSIdentity returns the roots the server must chain to and the
	// client certificates to present.
	TLSIdentity() (roots *x509.CertPool, certs []tls.Certificate)
}

// GatewayAuthConfig is the gateway section of the agent config.
type GatewayAuthConfig struct {
	CertFile string // the terminal's certificate, naming its plate (PEM)
	KeyFile  string // its private key (PEM), mode 0600 or stricter
	CAFile   string // the fleet CA that signed the gateway's certificate (PEM)
}

// GatewayAuth authenticates the terminal to taxi-gateway with a mutual TLS
// client certificate issued by the fleet CA. The request carries no
// signature: the gateway signs it with the merchant key. An answer is
// trusted because TLS verified the gateway's certificate against the fleet
// CA, and the gateway relays a 204 only for an answer of WeChat Pay whose
// signature it verified.
type GatewayAuth struct {
	roots *x509.CertPool
	cert  tls.Certificate
}

var _ TLSAuthenticator = (*GatewayAuth)(nil)

// NewGatewayAuth loads the terminal's key pair and the fleet CA. The key
// must not be readable by group or others; the CA file must hold at least
// one certificate. Only the fleet CA is trusted, not the system's roots.
func NewGatewayAuth(c GatewayAuthConfig) (*GatewayAuth, error) {
	if fi, err := os.Stat(c.KeyFile); err != nil {
		return nil, fmt.Errorf("load terminal key: %w", err)
	} else if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("load terminal key %s (mode %04o): %w", c.KeyFile, fi.Mode().Perm(), ErrKeyPermissions)
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("load terminal certificate: %w", err)
	}
	data, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, fmt.Errorf("read fleet ca: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("read fleet ca %s: %w", c.CAFile, ErrNoCertificates)
	}
	return &GatewayAuth{roots: roots, cert: cert}, nil
}

// TLSIdentity returns the fleet CA and the terminal's certificate.
func (a *GatewayAuth) TLSIdentity() (*x509.CertPool, []tls.Certificate) {
	return a.roots, []tls.Certificate{a.cert}
}

// Sign adds nothing: the client certificate authenticates the terminal.
func (a *GatewayAuth) Sign(context.Context, *http.Request, []byte) error { return nil }

// Verify accepts an answer that came over a TLS connection (which the
// transport verified against the fleet CA); anything else wraps
// ErrUnsigned.
func (a *GatewayAuth) Verify(_ context.Context, resp *http.Response, _ []byte) error {
	if resp.TLS == nil || len(resp.TLS.VerifiedChains) == 0 {
		return fmt.Errorf("verify answer: %w: not over a verified TLS connection to the gateway", ErrUnsigned)
	}
	return nil
}
