package punchsim

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"time"
)

// PlatformCert is a WeChat Pay platform certificate (微信支付平台证书) of
// the fake, with the private key it signs answers with.
type PlatformCert struct {
	Serial string // upper-case hex, as WeChat Pay writes it in Wechatpay-Serial
	PEM    []byte // the certificate, one PEM block
	Cert   *x509.Certificate
	key    *rsa.PrivateKey
}

// NewPlatformCert makes a throwaway platform certificate valid from
// notBefore to notAfter.
func NewPlatformCert(notBefore, notAfter time.Time) (PlatformCert, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return PlatformCert{}, fmt.Errorf("generate platform key: %w", err)
	}
	return platformCertFor(key, notBefore, notAfter)
}

func platformCertFor(key *rsa.PrivateKey, notBefore, notAfter time.Time) (PlatformCert, error) {
	sb := make([]byte, 20)
	_, _ = rand.Read(sb)
	sb[0] = sb[0]&0x7f | 0x10 // positive, 20 bytes, no leading zero
	serial := new(big.Int).SetBytes(sb)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "Tenpay.com sign (punchsim)", Organization: []string{"punchsim"}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return PlatformCert{}, fmt.Errorf("create platform certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return PlatformCert{}, fmt.Errorf("parse platform certificate: %w", err)
	}
	return PlatformCert{
		Serial: fmt.Sprintf("%X", serial.Bytes()),
		PEM:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Cert:   cert,
		key:    key,
	}, nil
}

// WriteCertFile writes the certificates' PEM blocks, in order, into one
// file (mode 0644), as a platform_cert_file holding several certificates.
func WriteCertFile(path string, certs ...PlatformCert) error {
	var data []byte
	for _, c := range certs {
		data = append(data, c.PEM...)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write certificate file: %w", err)
	}
	return nil
}

// AnswerSigner says which key signs the fake's answers.
type AnswerSigner int

// Answer signers.
const (
	// SignAsAsked (the default) signs with the platform certificate the
	// request names in Wechatpay-Serial if the fake has it, else with the
	// public key.
	SignAsAsked AnswerSigner = iota
	// SignWithCertificate signs with the current platform certificate
	// whatever the request asks: a merchant still on certificates.
	SignWithCertificate
	// SignWithPublicKey signs with the public key whatever the request
	// asks: a merchant switched to the public key.
	SignWithPublicKey
)

// SetAnswerSigner changes which key signs answers from now on: the
// switch of a merchant from platform certificates to the public key.
func (s *Server) SetAnswerSigner(a AnswerSigner) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signer = a
}

// AddPlatformCert adds a platform certificate to those the fake serves
// on GET /v3/certificates; with use, it signs certificate-signed answers
// from now on (a rotation). The older ones stay downloadable.
func (s *Server) AddPlatformCert(c PlatformCert, use bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.platforms = append(s.platforms, c)
	if use {
		s.current = len(s.platforms) - 1
	}
}

// RotatePlatformCert makes a new platform certificate, serves it for
// download and signs with it from now on.
func (s *Server) RotatePlatformCert() (PlatformCert, error) {
	now := s.now()
	c, err := NewPlatformCert(now.Add(-time.Minute), now.Add(5*365*24*time.Hour))
	if err != nil {
		return PlatformCert{}, err
	}
	s.AddPlatformCert(c, true)
	return c, nil
}

// RetirePlatformCert stops serving the certificate with serial for
// download (it expired or was revoked); it no longer signs.
func (s *Server) RetirePlatformCert(serial string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.platforms[s.current].Serial
	for i, c := range s.platforms {
		if c.Serial == serial && len(s.platforms) > 1 {
			s.platforms = append(s.platforms[:i:i], s.platforms[i+1:]...)
			break
		}
	}
	s.current = 0
	for i, c := range s.platforms {
		if c.Serial == cur {
			s.current = i
		}
	}
}

// PlatformCerts returns the certificates served for download, oldest
// first.
func (s *Server) PlatformCerts() []PlatformCert {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]PlatformCert(nil), s.platforms...)
}

// SetClockSkew sets how far the fake's clock is from Options.Now: a
// WeChat Pay whose time differs from the terminal's. The 5-minute window
// for requests and the timestamps of answers follow it.
func (s *Server) SetClockSkew(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.skew = d
}

// now is the fake's clock: Options.Now plus the skew.
func (s *Server) now() time.Time {
	s.mu.Lock()
	skew := s.skew
	s.mu.Unlock()
	return s.opts.Now().Add(skew)
}

// answerKey picks the key that signs an answer to a request that named
// accept in Wechatpay-Serial.
func (s *Server) answerKey(accept string) (*rsa.PrivateKey, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.signer {
	case SignWithPublicKey:
		return s.pubSigner, s.keys.PublicKeyID
	case SignWithCertificate:
		c := s.platforms[s.current]
		return c.key, c.Serial
	}
	for _, c := range s.platforms {
		if accept != "" && c.Serial == accept {
			return c.key, c.Serial
		}
	}
	return s.pubSigner, s.keys.PublicKeyID
}
