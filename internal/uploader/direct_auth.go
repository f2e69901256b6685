package uploader

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/credentials"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/signers"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/validators"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/verifiers"
	"github.com/wechatpay-apiv3/wechatpay-go/core/consts"
	"github.com/wechatpay-apiv3/wechatpay-go/utils"
)

// Authenticator is the pluggable authentication step of the punch client.
// Direct mode (DirectAuth) signs with the merchant key on the terminal; a
// gateway mode can authenticate the terminal otherwise without touching the
// drain loop.
type Authenticator interface {
	// Sign sets Authorization (and Wechatpay-Serial, naming the key answers
	// must be signed with) afresh on every attempt: a new timestamp and
	// nonce each time. body is exactly the bytes that will be sent.
	Sign(ctx context.Context, req *http.Request, body []byte) error
	// Verify checks a 2xx answer: its signature, its timestamp window, and
	// that it is not a WECHATPAY/SIGNTEST/ probe. body is the answer body.
	Verify(ctx context.Context, resp *http.Response, body []byte) error
}

// signTestPrefix marks WeChat Pay's probe signatures.
const signTestPrefix = "WECHATPAY/SIGNTEST/"

// answerWindow is how far an answer's timestamp may be from the local
// clock (the SDK's consts.FiveMinute).
const answerWindow = consts.FiveMinute * time.Second

// DirectAuthConfig is the wechatpay section of the config. Set either
// PublicKeyID and PublicKeyFile (WeChat Pay public-key mode) or
// PlatformCertFile (platform-certificate mode).
type DirectAuthConfig struct {
	MchID            string
	MerchantSerialNo string
	PrivateKeyFile   string // PKCS#8 PEM, mode 0600 or stricter
	PublicKeyID      string // PUB_KEY_ID_…
	PublicKeyFile    string
	PlatformCertFile string
}

// DirectAuth signs requests with the merchant's private key and verifies
// answers with the WeChat Pay public key or platform certificate, through
// the official SDK's core/auth packages (credentials, signers, verifiers,
// validators).
type DirectAuth struct {
	credential *credentials.WechatPayCredentials
	validator  *validators.WechatPayResponseValidator
	serial     string // sent as Wechatpay-Serial
}

var _ Authenticator = (*DirectAuth)(nil)

// NewDirectAuth loads the keys c names. The merchant private key must not
// be readable by group or others.
func NewDirectAuth(c DirectAuthConfig) (*DirectAuth, error) {
	if c.MchID == "" || strings.TrimSpace(c.MerchantSerialNo) == "" {
		return nil, fmt.Errorf("load direct auth: %w: mchid and merchant serial number are required", ErrConfig)
	}
	if fi, err := os.Stat(c.PrivateKeyFile); err != nil {
		return nil, fmt.Errorf("load merchant private key: %w", err)
	} else if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("load merchant private key %s (mode %04o): %w", c.PrivateKeyFile, fi.Mode().Perm(), ErrKeyPermissions)
	}
	key, err := utils.LoadPrivateKeyWithPath(c.PrivateKeyFile)
	if err != nil {
		return nil, fmt.Errorf("load merchant private key: %w", err)
	}

	var (
		verifier auth.Verifier
		serial   string
	)
	pubKeyMode := c.PublicKeyID != "" || c.PublicKeyFile != ""
	switch {
	case pubKeyMode && c.PlatformCertFile != "", !pubKeyMode && c.PlatformCertFile == "":
		return nil, fmt.Errorf("load direct auth: %w", ErrAuthMode)
	case pubKeyMode:
		if c.PublicKeyID == "" || c.PublicKeyFile == "" {
			return nil, fmt.Errorf("load direct auth: %w", ErrAuthMode)
		}
		pub, err := utils.LoadPublicKeyWithPath(c.PublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("load wechat pay public key: %w", err)
		}
		verifier = verifiers.NewSHA256WithRSAPubkeyVerifier(c.PublicKeyID, *pub)
		serial = c.PublicKeyID
	default:
		cert, err := utils.LoadCertificateWithPath(c.PlatformCertFile)
		if err != nil {
			return nil, fmt.Errorf("load platform certificate: %w", err)
		}
		verifier = verifiers.NewSHA256WithRSAVerifier(core.NewCertificateMapWithList([]*x509.Certificate{cert}))
		serial = utils.GetCertificateSerialNumber(*cert)
	}

	return &DirectAuth{
		credential: &credentials.WechatPayCredentials{Signer: &signers.SHA256WithRSASigner{
			MchID: c.MchID, CertificateSerialNo: c.MerchantSerialNo, PrivateKey: key,
		}},
		validator: validators.NewWechatPayResponseValidator(verifier),
		serial:    serial,
	}, nil
}

// AcceptSerial is the Wechatpay-Serial sent with requests: the public key
// id or the platform certificate's serial number.
func (a *DirectAuth) AcceptSerial() string { return a.serial }

// Sign sets a fresh Authorization header (new timestamp and nonce, signed
// over method, path and query, timestamp, nonce and body) and
// Wechatpay-Serial.
func (a *DirectAuth) Sign(ctx context.Context, req *http.Request, body []byte) error {
	h, err := a.credential.GenerateAuthorizationHeader(ctx, req.Method, req.URL.RequestURI(), string(body))
	if err != nil {
		return fmt.Errorf("sign request: %w", err)
	}
	req.Header.Set(consts.Authorization, h)
	req.Header.Set(consts.WechatPaySerial, a.serial)
	return nil
}

// Verify accepts an answer only when it carries a real signature (not a
// WECHATPAY/SIGNTEST/ probe), its timestamp is within 5 minutes of the
// local clock, and the SDK's validator verifies it against the configured
// key. The errors wrap ErrUnsigned, ErrSignTest, ErrStaleAnswer or
// ErrBadSignature.
func (a *DirectAuth) Verify(ctx context.Context, resp *http.Response, body []byte) error {
	h := resp.Header
	sig := h.Get(consts.WechatPaySignature)
	for _, k := range []string{consts.WechatPayTimestamp, consts.WechatPayNonce, consts.WechatPaySignature, consts.WechatPaySerial} {
		if strings.TrimSpace(h.Get(k)) == "" {
			return fmt.Errorf("verify answer: %w: no %s", ErrUnsigned, k)
		}
	}
	if strings.HasPrefix(sig, signTestPrefix) {
		return fmt.Errorf("verify answer: %w", ErrSignTest)
	}
	ts, err := strconv.ParseInt(strings.TrimSpace(h.Get(consts.WechatPayTimestamp)), 10, 64)
	if err != nil {
		return fmt.Errorf("verify answer: %w: timestamp %q", ErrStaleAnswer, h.Get(consts.WechatPayTimestamp))
	}
	if skew := time.Since(time.Unix(ts, 0)); math.Abs(skew.Seconds()) >= answerWindow.Seconds() {
		return fmt.Errorf("verify answer: %w: %s off", ErrStaleAnswer, skew.Round(time.Second))
	}
	// The SDK's validator reads the body from the response.
	orig := resp.Body
	resp.Body = io.NopCloser(bytes.NewReader(body))
	err = a.validator.Validate(ctx, resp)
	resp.Body = orig
	if err != nil {
		return fmt.Errorf("verify answer: %w: %v", ErrBadSignature, err)
	}
	return nil
}
