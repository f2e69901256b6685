package wechatpay

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/verifiers"
	"github.com/wechatpay-apiv3/wechatpay-go/utils"
)

// PublicKeyIDPrefix starts every WeChat Pay public key id.
const PublicKeyIDPrefix = "PUB_KEY_ID_"

// ExpiryWarning is how long before a platform certificate's NotAfter
// check-config warns about it.
const ExpiryWarning = 30 * 24 * time.Hour

// KeyKind says what a verifying key is.
type KeyKind string

// The kinds of key that verify answers.
const (
	KindPublicKey   KeyKind = "public key"           // WeChat Pay public key, serial PUB_KEY_ID_…
	KindCertificate KeyKind = "platform certificate" // 微信支付平台证书, serial in upper-case hex
)

// Key is one key that verifies WeChat Pay's answers.
type Key struct {
	Kind   KeyKind `json:"kind"`
	Serial string  `json:"serial"` // the Wechatpay-Serial an answer signed with it carries
	// NotBefore and NotAfter bound a certificate; zero for a public key.
	NotBefore time.Time `json:"not_before,omitzero"`
	NotAfter  time.Time `json:"not_after,omitzero"`
	// Source is the file it came from, or "downloaded".
	Source string `json:"source"`
}

// KeySet is an immutable set of keys that verify answers: at most one
// WeChat Pay public key and any number of platform certificates. An answer
// is verified with the key its Wechatpay-Serial names, through the SDK's
// verifiers (the combined public-key and certificate verifier when both
// kinds are present), so that a certificate rotation or a migration to the
// public key needs no flag day.
type KeySet struct {
	keys        []Key
	publicKeyID string
	certs       []*x509.Certificate
	certSource  []string
	pub         *rsa.PublicKey
	verifier    auth.Verifier
}

// NewKeySet builds a set from a public key (id and key; both empty for
// none) and certificates, each with the source it came from.
func NewKeySet(publicKeyID string, pub *rsa.PublicKey, certs []*x509.Certificate, sources []string) (*KeySet, error) {
	if (publicKeyID == "") != (pub == nil) {
		return nil, fmt.Errorf("build key set: public key id and public key go together")
	}
	if publicKeyID != "" && !strings.HasPrefix(publicKeyID, PublicKeyIDPrefix) {
		return nil, fmt.Errorf("build key set: public key id %q does not start with %s", publicKeyID, PublicKeyIDPrefix)
	}
	s := &KeySet{publicKeyID: publicKeyID, pub: pub}
	if pub != nil {
		s.keys = append(s.keys, Key{Kind: KindPublicKey, Serial: publicKeyID})
	}
	seen := map[string]bool{}
	for i, c := range certs {
		if _, ok := c.PublicKey.(*rsa.PublicKey); !ok {
			return nil, fmt.Errorf("build key set: certificate %s has no RSA key", utils.GetCertificateSerialNumber(*c))
		}
		serial := utils.GetCertificateSerialNumber(*c)
		if seen[serial] {
			continue
		}
		seen[serial] = true
		src := ""
		if i < len(sources) {
			src = sources[i]
		}
		s.certs = append(s.certs, c)
		s.certSource = append(s.certSource, src)
		s.keys = append(s.keys, Key{Kind: KindCertificate, Serial: serial, NotBefore: c.NotBefore, NotAfter: c.NotAfter, Source: src})
	}
	if len(s.keys) == 0 {
		return nil, fmt.Errorf("build key set: %w", ErrNoKeys)
	}
	certMap := core.NewCertificateMapWithList(s.certs)
	switch {
	case pub != nil && len(s.certs) > 0:
		s.verifier = verifiers.NewSHA256WithRSACombinedVerifier(certMap, publicKeyID, *pub)
	case pub != nil:
		s.verifier = verifiers.NewSHA256WithRSAPubkeyVerifier(publicKeyID, *pub)
	default:
		s.verifier = verifiers.NewSHA256WithRSAVerifier(certMap)
	}
	return s, nil
}

// KeySetFiles names the files a KeySet is loaded from.
type KeySetFiles struct {
	PublicKeyID      string // PUB_KEY_ID_…; with PublicKeyFile
	PublicKeyFile    string // PEM PUBLIC KEY
	PlatformCertFile string // one or more PEM CERTIFICATE blocks
}

// LoadKeySet reads the files f names; extra certificates (a downloaded
// set) join those of the file.
func LoadKeySet(f KeySetFiles, extra []*x509.Certificate, extraSource string) (*KeySet, error) {
	var pub *rsa.PublicKey
	if f.PublicKeyFile != "" || f.PublicKeyID != "" {
		if f.PublicKeyFile == "" || f.PublicKeyID == "" {
			return nil, fmt.Errorf("load key set: public_key_id and public_key_file go together")
		}
		p, err := utils.LoadPublicKeyWithPath(f.PublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("load wechat pay public key: %w", err)
		}
		pub = p
	}
	var certs []*x509.Certificate
	var sources []string
	if f.PlatformCertFile != "" {
		cs, err := LoadCertificates(f.PlatformCertFile)
		if err != nil {
			return nil, err
		}
		certs = cs
		for range cs {
			sources = append(sources, f.PlatformCertFile)
		}
	}
	for _, c := range extra {
		certs = append(certs, c)
		sources = append(sources, extraSource)
	}
	return NewKeySet(f.PublicKeyID, pub, certs, sources)
}

// LoadCertificates reads every CERTIFICATE PEM block of path, in order. A
// block that does not parse, or a block of another type, is an error that
// names its position: a file meant to hold certificates holds nothing
// else.
func LoadCertificates(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load platform certificates: %w", err)
	}
	certs, err := ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("load platform certificates from %s: %w", path, err)
	}
	return certs, nil
}

// ParseCertificates parses every PEM block of data as a certificate.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is %s, not CERTIFICATE", n, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, ErrNoCertificates
	}
	return certs, nil
}

// Keys lists the set: the public key first, then the certificates in the
// order they were given.
func (s *KeySet) Keys() []Key { return slices.Clone(s.keys) }

// Certificates returns the platform certificates of the set.
func (s *KeySet) Certificates() []*x509.Certificate { return slices.Clone(s.certs) }

// Has reports whether serial names a key of the set.
func (s *KeySet) Has(serial string) bool {
	serial = normalSerial(serial)
	return slices.ContainsFunc(s.keys, func(k Key) bool { return k.Serial == serial })
}

// AcceptSerial is the Wechatpay-Serial a request sends to say which key
// the answer should be signed with: the public key id when there is one
// (the key WeChat Pay is moving merchants to), else the newest platform
// certificate (latest NotBefore, as the SDK's certificate map picks).
func (s *KeySet) AcceptSerial() string {
	if s.publicKeyID != "" {
		return s.publicKeyID
	}
	var newest *x509.Certificate
	for _, c := range s.certs {
		if newest == nil || c.NotBefore.After(newest.NotBefore) {
			newest = c
		}
	}
	return utils.GetCertificateSerialNumber(*newest)
}

// Verify checks signature (base64 SHA256withRSA) over message with the key
// serial names. The error wraps ErrUnknownSerial when no key has that
// serial.
func (s *KeySet) Verify(ctx context.Context, serial, message, signature string) error {
	serial = normalSerial(serial)
	if !s.Has(serial) {
		return fmt.Errorf("verify signature: %w: %s", ErrUnknownSerial, serial)
	}
	if err := s.verifier.Verify(ctx, serial, message, signature); err != nil {
		return fmt.Errorf("verify signature with %s: %w", serial, err)
	}
	return nil
}

// Expiry sorts the set's certificates at now into expired ones and ones
// that expire within ExpiryWarning.
func (s *KeySet) Expiry(now time.Time) (expired, expiring []Key) {
	for _, k := range s.keys {
		switch {
		case k.Kind != KindCertificate:
		case !now.Before(k.NotAfter):
			expired = append(expired, k)
		case k.NotAfter.Sub(now) < ExpiryWarning:
			expiring = append(expiring, k)
		}
	}
	return expired, expiring
}

// normalSerial upper-cases a certificate serial (WeChat Pay sends
// upper-case hex; the SDK keys certificates that way); a public key id is
// left alone.
func normalSerial(serial string) string {
	serial = strings.TrimSpace(serial)
	if strings.HasPrefix(serial, PublicKeyIDPrefix) {
		return serial
	}
	return strings.ToUpper(serial)
}
