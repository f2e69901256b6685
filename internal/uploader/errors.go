package uploader

import (
	"errors"

	"taxi-agent/internal/wechatpay"
)

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
	ErrUnsigned = wechatpay.ErrUnsigned
	// ErrSignTest means the answer carries a WECHATPAY/SIGNTEST/ probe
	// signature, which WeChat Pay sends to check that clients verify.
	ErrSignTest = wechatpay.ErrSignTest
	// ErrStaleAnswer means the answer's Wechatpay-Timestamp is 5 minutes or
	// more away from the local clock.
	ErrStaleAnswer = errors.New("answer timestamp is outside the 5-minute window")
	// ErrBadSignature means the answer's signature does not verify with the
	// key its Wechatpay-Serial names, or no known key has that serial.
	ErrBadSignature = errors.New("answer signature does not verify")

	// ErrAuthMode means no key would verify answers (no public key, no
	// platform certificate, no APIv3 key to download them), or a public
	// key id without its file or the reverse.
	ErrAuthMode = errors.New("configure public_key_id with public_key_file, platform_cert_file, or apiv3_key_file")
	// ErrKeyPermissions means the merchant private key is readable by group
	// or others.
	ErrKeyPermissions = errors.New("private key is accessible by group or others")
	// ErrNoCertificates means the CA file holds no PEM certificate.
	ErrNoCertificates = errors.New("no certificates found")
	// ErrConfig means a Config field is invalid; the message names it.
	ErrConfig = errors.New("invalid uploader config")
)
