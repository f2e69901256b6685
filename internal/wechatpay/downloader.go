package wechatpay

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth"
	"github.com/wechatpay-apiv3/wechatpay-go/core/consts"
	"github.com/wechatpay-apiv3/wechatpay-go/core/downloader"
)

// CertificatesPath is the platform-certificate download API.
const CertificatesPath = "/v3/certificates"

// DefaultRefreshInterval is how often the downloader fetches the platform
// certificates: twice a day, well inside the SDK's advice of at most two
// days, so that a certificate announced for a rotation is known before
// answers are signed with it.
const DefaultRefreshInterval = 12 * time.Hour

// DownloaderConfig sets up a CertDownloader.
type DownloaderConfig struct {
	// BaseURL is where requests go (wechatpay.base_url). The SDK's
	// downloader asks https://api.mch.weixin.qq.com; the transport sends
	// that request to BaseURL instead.
	BaseURL string
	// HTTPClient carries the requests (TLS roots, timeouts).
	HTTPClient *http.Client
	// Signer signs the download request (the SDK's merchant signer).
	Signer auth.Signer
	// APIv3Key decrypts the certificates (AEAD_AES_256_GCM).
	APIv3Key string
	// StoreFile keeps the last good set (PEM), so that a restart offline
	// still verifies answers.
	StoreFile string
	// Resign, when set, may sign a request afresh before it is sent (with
	// WeChat Pay's time after a clock complaint).
	Resign func(req *http.Request) error
	// Verify checks the download answer with the keys known so far. An
	// error that wraps ErrUnknownSerial defers the check to the
	// downloaded set itself (the first download, or a rotation).
	Verify func(ctx context.Context, resp *http.Response, body []byte) error
	// AcceptSerial is sent as Wechatpay-Serial; nil sends none.
	AcceptSerial func() string
}

// CertDownloader fetches WeChat Pay's platform certificates with the SDK's
// certificate downloader and keeps the last good set on disk.
type CertDownloader struct {
	cfg DownloaderConfig
	mu  sync.Mutex // one download at a time
}

// NewCertDownloader checks cfg.
func NewCertDownloader(cfg DownloaderConfig) (*CertDownloader, error) {
	if len(cfg.APIv3Key) != 32 {
		return nil, fmt.Errorf("new certificate downloader: %w", ErrAPIv3Key)
	}
	if cfg.Signer == nil || cfg.HTTPClient == nil || cfg.StoreFile == "" {
		return nil, fmt.Errorf("new certificate downloader: signer, http client and store file are required")
	}
	if _, err := url.Parse(cfg.BaseURL); err != nil {
		return nil, fmt.Errorf("new certificate downloader: base url: %w", err)
	}
	return &CertDownloader{cfg: cfg}, nil
}

// ReadAPIv3Key reads the APIv3 key (32 characters) from path; surrounding
// white space is ignored.
func ReadAPIv3Key(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read apiv3 key: %w", err)
	}
	k := strings.TrimSpace(string(data))
	if len(k) != 32 {
		return "", fmt.Errorf("read apiv3 key %s: %w, not %d", path, ErrAPIv3Key, len(k))
	}
	return k, nil
}

// Stored returns the set saved by the last good download; the error wraps
// os.ErrNotExist when there is none.
func (d *CertDownloader) Stored() ([]*x509.Certificate, error) {
	return LoadCertificates(d.cfg.StoreFile)
}

// Download fetches the platform certificates now, checks them, and on
// success replaces the stored set. The answer's signature is checked with
// Verify, or with the downloaded set itself when it is signed by a key
// not yet known.
func (d *CertDownloader) Download(ctx context.Context) ([]*x509.Certificate, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v := &downloadValidator{cfg: &d.cfg}
	hc := *d.cfg.HTTPClient
	hc.Transport = &redirectTransport{base: d.cfg.BaseURL, next: transportOf(d.cfg.HTTPClient), resign: d.cfg.Resign}
	client, err := core.NewClientWithDialSettings(ctx, &core.DialSettings{HTTPClient: &hc, Signer: d.cfg.Signer, Validator: v})
	if err != nil {
		return nil, fmt.Errorf("download platform certificates: %w", err)
	}
	dl, err := downloader.NewCertificateDownloaderWithClient(ctx, client, d.cfg.APIv3Key)
	if err != nil {
		return nil, fmt.Errorf("download platform certificates: %w", err)
	}
	contents := dl.ExportAll(ctx)
	serials := make([]string, 0, len(contents))
	for s := range contents {
		serials = append(serials, s)
	}
	slices.Sort(serials)
	var buf bytes.Buffer
	for _, s := range serials {
		buf.WriteString(strings.TrimSpace(contents[s]))
		buf.WriteString("\n")
	}
	certs, err := ParseCertificates(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("download platform certificates: %w", err)
	}
	for _, c := range certs {
		if s := serialOf(c); !slices.Contains(serials, s) {
			return nil, fmt.Errorf("download platform certificates: certificate %s listed under another serial", s)
		}
	}
	if v.deferred != nil {
		set, err := NewKeySet("", nil, certs, nil)
		if err != nil {
			return nil, fmt.Errorf("download platform certificates: %w", err)
		}
		if err := set.Verify(ctx, v.deferred.Serial, v.deferred.Message, v.deferred.Signature); err != nil {
			return nil, fmt.Errorf("download platform certificates: answer signature: %w", err)
		}
	}
	if err := writeFileAtomic(d.cfg.StoreFile, buf.Bytes(), 0o644); err != nil {
		return nil, fmt.Errorf("store platform certificates: %w", err)
	}
	return certs, nil
}

func serialOf(c *x509.Certificate) string { return fmt.Sprintf("%X", c.SerialNumber.Bytes()) }

// downloadValidator is the auth.Validator of the download client.
type downloadValidator struct {
	cfg      *DownloaderConfig
	deferred *SignedAnswer
}

func (v *downloadValidator) Validate(ctx context.Context, resp *http.Response) error {
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	a, err := ReadSignedAnswer(resp.Header, body)
	if err != nil {
		return err
	}
	if v.cfg.Verify == nil {
		v.deferred = &a
		return nil
	}
	err = v.cfg.Verify(ctx, resp, body)
	if errors.Is(err, ErrUnknownSerial) {
		v.deferred = &a
		return nil
	}
	return err
}

func (v *downloadValidator) GetAcceptSerial(context.Context) (string, error) {
	if v.cfg.AcceptSerial == nil {
		return "", errors.New("no accept serial")
	}
	return v.cfg.AcceptSerial(), nil
}

// redirectTransport sends the SDK's requests for the API server to the
// configured base URL, re-signed by resign when set.
type redirectTransport struct {
	base   string
	next   http.RoundTripper
	resign func(*http.Request) error
}

func (t *redirectTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base, err := url.Parse(t.base)
	if err != nil {
		return nil, err
	}
	r := req.Clone(req.Context())
	if api, _ := url.Parse(consts.WechatPayAPIServer); req.URL.Host == api.Host {
		r.URL.Scheme, r.URL.Host = base.Scheme, base.Host
		r.URL.Path = strings.TrimRight(base.Path, "/") + req.URL.Path
		r.Host = ""
	}
	if t.resign != nil {
		if err := t.resign(r); err != nil {
			return nil, err
		}
	}
	return t.next.RoundTrip(r)
}

func transportOf(c *http.Client) http.RoundTripper {
	if c.Transport != nil {
		return c.Transport
	}
	return http.DefaultTransport
}

// writeFileAtomic replaces path with data: a temporary file in the same
// directory, synced, renamed over it, and the directory synced.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
