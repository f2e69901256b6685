package uploader

import "errors"

// Sentinel errors of the uploader. Answers that fail verification wrap one
// of ErrUnsigned, ErrSignTest, ErrStaleAnswer or ErrBadSignature inside a
// *DeliveryError of KindUnverified.
var (
	// ErrRunning is returned by Run while another Run is active.
	ErrRunning = errors.New("uploader already running")
	// ErrAbandoned is the cause of an attempt cut off at shutdown after
	// Config.ShutdownGrace.
	ErrAbandoned = errors.New("attempt abandoned at shutdown")

	// ErrUnsigned means a 2xx answer lacks the Wechatpay-* signature headers.
	ErrUnsigned = errors.New("answer is not signed")
	// ErrSignTest means the answer carries a WECHATPAY/SIGNTEST/ probe
	// signature, which WeChat Pay sends to check that clients verify.
	ErrSignTest = errors.New("answer carries a WECHATPAY/SIGNTEST/ probe signature")
	// ErrStaleAnswer means the answer's Wechatpay-Timestamp is 5 minutes or
	// more away from the local clock.
	ErrStaleAnswer = errors.New("answer timestamp is outside the 5-minute window")
	// ErrBadSignature means the answer's signature does not verify with the
	// configured WeChat Pay public key or platform certificate.
	ErrBadSignature = errors.New("answer signature does not verify")

	// ErrAuthMode means neither or both of public-key mode (public key id
	// and file) and platform-certificate mode were configured.
	ErrAuthMode = errors.New("configure either public_key_id with public_key_file, or platform_cert_file")
	// ErrKeyPermissions means the merchant private key is readable by group
	// or others.
	ErrKeyPermissions = errors.New("private key is accessible by group or others")
	// ErrNoCertificates means the CA file holds no PEM certificate.
	ErrNoCertificates = errors.New("no certificates found")
	// ErrConfig means a Config field is invalid; the message names it.
	ErrConfig = errors.New("invalid uploader config")
)
