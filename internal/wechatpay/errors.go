package wechatpay

import "errors"

// Sentinel errors of the package.
var (
	// ErrNoKeys means no key would verify answers: neither a public key,
	// nor a platform certificate, nor a downloaded set.
	ErrNoKeys = errors.New("no key to verify WeChat Pay's answers")
	// ErrNoCertificates means a platform certificate file holds no
	// CERTIFICATE PEM block.
	ErrNoCertificates = errors.New("no certificate found")
	// ErrUnknownSerial means an answer names (in Wechatpay-Serial) a key
	// that is not in the set.
	ErrUnknownSerial = errors.New("no key with this serial")
	// ErrCertificateExpired means a platform certificate is past its
	// NotAfter.
	ErrCertificateExpired = errors.New("certificate expired")
	// ErrAPIv3Key means the APIv3 key file does not hold a 32-byte key.
	ErrAPIv3Key = errors.New("APIv3 key must be 32 characters")
)
