package uploader

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/signers"
	"github.com/wechatpay-apiv3/wechatpay-go/core/consts"
	"github.com/wechatpay-apiv3/wechatpay-go/utils"

	"taxi-agent/internal/wechatpay"
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

// AnswerObserver is implemented by an Authenticator that learns from
// answers that are not 2xx (WeChat Pay's time from a signed 401). Observe
// reports whether the authenticator changed what it sends (it now signs
// with WeChat Pay's time), so that the refused event is worth retrying
// soon rather than after HeldRetry.
type AnswerObserver interface {
	Observe(ctx context.Context, resp *http.Response, body []byte) (changed bool)
}

// answerWindow is how far an answer's timestamp may be from WeChat Pay's
// time as known (the SDK's consts.FiveMinute).
const answerWindow = wechatpay.AnswerWindow

// DirectAuthConfig is the wechatpay section of the config. Answers are
// verified with every key configured: the public key (PublicKeyID with
// PublicKeyFile), every certificate of PlatformCertFile, and the
// certificates downloaded with the APIv3 key; at least one is needed.
type DirectAuthConfig struct {
	MchID            string
	MerchantSerialNo string
	PrivateKeyFile   string // PKCS#8 PEM, mode 0600 or stricter
	PublicKeyID      string // PUB_KEY_ID_…
	PublicKeyFile    string
	PlatformCertFile string // one or more PEM certificates

	// APIv3KeyFile, when set, turns on the platform-certificate downloader
	// (GET /v3/certificates, decrypted with this key, mode 0600).
	APIv3KeyFile string
	// CertStoreFile keeps the last good downloaded set; required with
	// APIv3KeyFile.
	CertStoreFile string
	// BaseURL and CAFile are where the downloader goes, as the uploader.
	BaseURL, CAFile string
	// RefreshInterval is the downloader's period; 0 means
	// wechatpay.DefaultRefreshInterval.
	RefreshInterval time.Duration

	// Now is the local wall clock; nil means time.Now.
	Now func() time.Time
	// ServerClock learns WeChat Pay's time from verified answers; nil
	// means a new one on the boot clock. Pass one to share it (the
	// daemon's clock-trust rule reads it).
	ServerClock *wechatpay.ServerClock
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// DirectAuth signs requests with the merchant's private key (the SDK's
// SHA256WithRSASigner) and verifies answers with a set of WeChat Pay keys
// (wechatpay.KeySet, the SDK's verifiers), choosing the key by the
// answer's Wechatpay-Serial. It learns WeChat Pay's time from every
// verified answer; after a 401 that points at the timestamp it signs with
// that time instead of the local clock. With an APIv3 key it downloads the
// platform certificates and keeps the last good set on disk.
type DirectAuth struct {
	signer *signers.SHA256WithRSASigner
	files  wechatpay.KeySetFiles
	keys   atomic.Pointer[wechatpay.KeySet]
	now    func() time.Time
	clock  *wechatpay.ServerClock
	log    *slog.Logger

	corrected atomic.Bool  // sign with WeChat Pay's time
	hint      atomic.Int64 // offset (ns) from an unverified Date, for signing only until learned

	dl       *wechatpay.CertDownloader
	interval time.Duration
	dlMu     sync.Mutex
	dlState  DownloadStatus
	// serialTried is when an answer's unknown serial last caused a
	// download, by serial; serialTries the last few of those downloads.
	serialTried map[string]time.Time
	serialTries []time.Time
}

var (
	_ Authenticator  = (*DirectAuth)(nil)
	_ AnswerObserver = (*DirectAuth)(nil)
)

// NewDirectAuth loads the keys c names. The merchant private key and the
// APIv3 key must not be readable by group or others. It sends nothing:
// the first download is Run's.
func NewDirectAuth(c DirectAuthConfig) (*DirectAuth, error) {
	if c.MchID == "" || strings.TrimSpace(c.MerchantSerialNo) == "" {
		return nil, fmt.Errorf("load direct auth: %w: mchid and merchant serial number are required", ErrConfig)
	}
	if err := checkSecretFile(c.PrivateKeyFile); err != nil {
		return nil, fmt.Errorf("load merchant private key: %w", err)
	}
	key, err := utils.LoadPrivateKeyWithPath(c.PrivateKeyFile)
	if err != nil {
		return nil, fmt.Errorf("load merchant private key: %w", err)
	}
	if (c.PublicKeyID == "") != (c.PublicKeyFile == "") ||
		c.PublicKeyID == "" && c.PlatformCertFile == "" && c.APIv3KeyFile == "" {
		return nil, fmt.Errorf("load direct auth: %w", ErrAuthMode)
	}
	a := &DirectAuth{
		signer: &signers.SHA256WithRSASigner{MchID: c.MchID, CertificateSerialNo: c.MerchantSerialNo, PrivateKey: key},
		files:  wechatpay.KeySetFiles{PublicKeyID: c.PublicKeyID, PublicKeyFile: c.PublicKeyFile, PlatformCertFile: c.PlatformCertFile},
		now:    c.Now, clock: c.ServerClock, log: c.Logger, interval: c.RefreshInterval,
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.clock == nil {
		a.clock = wechatpay.NewServerClock(a.now, nil)
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	a.log = a.log.With("component", "wechatpay")
	if a.interval <= 0 {
		a.interval = wechatpay.DefaultRefreshInterval
	}
	var stored []*x509.Certificate
	if c.APIv3KeyFile != "" {
		if stored, err = a.newDownloader(c); err != nil {
			return nil, err
		}
	}
	if c.PublicKeyID != "" || c.PlatformCertFile != "" || len(stored) > 0 {
		set, err := wechatpay.LoadKeySet(a.files, stored, "downloaded")
		if err != nil {
			return nil, fmt.Errorf("load direct auth: %w", err)
		}
		a.keys.Store(set)
		expired, expiring := set.Expiry(a.now())
		for _, k := range expired {
			a.log.Warn("platform certificate expired: answers it signs still verify, but remove it from the file", "serial", k.Serial, "not_after", k.NotAfter, "source", k.Source)
		}
		for _, k := range expiring {
			a.log.Warn("platform certificate expires within 30 days: add the new one, or migrate to the public key", "serial", k.Serial, "not_after", k.NotAfter, "source", k.Source)
		}
	}
	return a, nil
}

// checkSecretFile insists, as ssh does, that only the owner can read path.
func checkSecretFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s (mode %04o): %w", path, fi.Mode().Perm(), ErrKeyPermissions)
	}
	return nil
}

// AcceptSerial is the Wechatpay-Serial sent with requests: the public key
// id, or the newest platform certificate's serial number (see
// wechatpay.KeySet.AcceptSerial); empty while no key is known.
func (a *DirectAuth) AcceptSerial() string {
	if ks := a.keys.Load(); ks != nil {
		return ks.AcceptSerial()
	}
	return ""
}

// Keys lists the keys that verify answers now.
func (a *DirectAuth) Keys() []wechatpay.Key {
	if ks := a.keys.Load(); ks != nil {
		return ks.Keys()
	}
	return nil
}

// ServerClock is WeChat Pay's time as learned from verified answers.
func (a *DirectAuth) ServerClock() *wechatpay.ServerClock { return a.clock }

// CorrectedSigning reports whether requests are signed with WeChat Pay's
// time rather than the local clock (after a 401 about the timestamp).
func (a *DirectAuth) CorrectedSigning() bool { return a.corrected.Load() }

// signTime is the timestamp a request is signed with: the local clock,
// or, after a 401 about the timestamp, WeChat Pay's time as learned (or,
// until a verified answer teaches it, as an unverified Date suggested).
func (a *DirectAuth) signTime() time.Time {
	local := a.now()
	if !a.corrected.Load() {
		return local
	}
	if t, ok := a.clock.Now(); ok {
		return t
	}
	return local.Add(time.Duration(a.hint.Load()))
}

// Sign sets a fresh Authorization header (new timestamp and nonce, signed
// over method, path and query, timestamp, nonce and body, in the SDK's
// message format with the SDK's signer) and Wechatpay-Serial.
func (a *DirectAuth) Sign(ctx context.Context, req *http.Request, body []byte) error {
	nonce, err := utils.GenerateNonce()
	if err != nil {
		return fmt.Errorf("sign request: %w", err)
	}
	ts := a.signTime().Unix()
	msg := fmt.Sprintf(consts.SignatureMessageFormat, req.Method, req.URL.RequestURI(), ts, nonce, body)
	res, err := a.signer.Sign(ctx, msg)
	if err != nil {
		return fmt.Errorf("sign request: %w", err)
	}
	req.Header.Set(consts.Authorization, fmt.Sprintf(consts.HeaderAuthorizationFormat,
		"WECHATPAY2-"+a.signer.Algorithm(), res.MchID, nonce, ts, res.CertificateSerialNo, res.Signature))
	if s := a.AcceptSerial(); s != "" {
		req.Header.Set(consts.WechatPaySerial, s)
	}
	return nil
}

// Verify accepts an answer only when it carries a real signature (not a
// WECHATPAY/SIGNTEST/ probe) that verifies with the key its
// Wechatpay-Serial names, and its timestamp is within 5 minutes of WeChat
// Pay's time as known before this answer (the local clock until an answer
// has taught it). An answer that passes teaches WeChat Pay's time. An unknown
// serial makes the downloader, if configured, fetch the certificates
// first. The errors wrap ErrUnsigned, ErrSignTest, ErrStaleAnswer or
// ErrBadSignature.
func (a *DirectAuth) Verify(ctx context.Context, resp *http.Response, body []byte) error {
	ans, err := wechatpay.ReadSignedAnswer(resp.Header, body)
	switch {
	case errors.Is(err, wechatpay.ErrBadTimestamp):
		return fmt.Errorf("verify answer: %w: %v", ErrStaleAnswer, err)
	case err != nil:
		return fmt.Errorf("verify answer: %w", err)
	}
	if err := a.verifySignature(ctx, ans); err != nil {
		return fmt.Errorf("verify answer: %w: %v", ErrBadSignature, err)
	}
	ref, known := a.clock.Now()
	if !known {
		ref = a.now()
	}
	if skew := ans.Time().Sub(ref); skew.Abs() >= answerWindow {
		// Not learned from: an old 2xx may be a replay, and taking its
		// time would make the next replay look fresh.
		return fmt.Errorf("verify answer: %w: %s off", ErrStaleAnswer, skew.Round(time.Second))
	}
	a.clock.Learn(ans.Timestamp)
	return nil
}

// Observe learns from an answer that is not 2xx: a verified signature
// teaches WeChat Pay's time; a 401 that points at the timestamp (its
// message says so, or its verified timestamp is 5 minutes or more from the
// local clock) turns on signing with WeChat Pay's time. An unverified Date
// header is only a hint, used for signing until a verified answer
// teaches the time. It reports whether signing changed.
func (a *DirectAuth) Observe(ctx context.Context, resp *http.Response, body []byte) bool {
	ans, err := wechatpay.ReadSignedAnswer(resp.Header, body)
	verified := err == nil && a.verifySignature(ctx, ans) == nil
	if verified {
		a.clock.Learn(ans.Timestamp)
	}
	if resp.StatusCode != http.StatusUnauthorized {
		return false
	}
	local := a.now()
	points := wechatpay.AboutTimestamp(errorBody(body).Message)
	if verified && ans.Time().Sub(local).Abs() >= answerWindow {
		points = true
	}
	if !verified {
		if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil && d.Sub(local).Abs() >= answerWindow {
			a.hint.Store(int64(d.Sub(local)))
			points = true
		}
	}
	if !points {
		return false
	}
	if !a.corrected.Swap(true) {
		off, _ := a.clock.Offset()
		a.log.Warn("WeChat Pay refused the request's timestamp: signing with WeChat Pay's time from now on; fix the system clock",
			"offset", off.Round(time.Second), "learned_from_signed_answer", verified)
		return true
	}
	return false
}

// verifySignature checks ans with the key set; an unknown serial first
// makes the downloader, if configured, fetch the certificates.
func (a *DirectAuth) verifySignature(ctx context.Context, ans wechatpay.SignedAnswer) error {
	ks := a.keys.Load()
	var err error
	if ks == nil {
		err = fmt.Errorf("%w: %s", wechatpay.ErrUnknownSerial, ans.Serial)
	} else {
		err = ks.Verify(ctx, ans.Serial, ans.Message, ans.Signature)
	}
	if !errors.Is(err, wechatpay.ErrUnknownSerial) || a.dl == nil {
		return err
	}
	if !a.refreshForSerial(ctx, ans.Serial) {
		return err
	}
	return a.keys.Load().Verify(ctx, ans.Serial, ans.Message, ans.Signature)
}
