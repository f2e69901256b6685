package punchsim

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"taxi-agent/internal/testsupport"
)

// sharedKeys are generated once per test binary: RSA key generation is the
// slowest part of these tests.
var sharedKeys Keys

func TestMain(m *testing.M) {
	testsupport.MainWithDir(m, "punchsim-keys-", func(dir string) (err error) {
		sharedKeys, err = GenerateKeys(dir)
		return err
	})
}

// newServer starts a fake with the shared keys and closes it at cleanup.
func newServer(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := New(sharedKeys, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// client is a hand-rolled merchant client, independent of the SDK and of
// the uploader, that lets a test break any part of a request.
type client struct {
	t    testing.TB
	key  *rsa.PrivateKey
	http *http.Client
	base string
}

func newClient(t testing.TB, s *Server) *client {
	t.Helper()
	key, err := loadPrivateKey(sharedKeys.PrivateKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: testsupport.CertPool(t, sharedKeys.CAFile)}}
	t.Cleanup(tr.CloseIdleConnections)
	return &client{t: t, key: key, http: &http.Client{Transport: tr, Timeout: 10 * time.Second}, base: s.URL()}
}

// req describes one request; zero fields take valid defaults.
type req struct {
	method, path, body string
	mchid, serial      string
	nonce              string
	ts                 int64
	signBody           *string // sign this instead of body
	noAuth             bool
	contentType        string
	userAgent          *string
	acceptSerial       string
	ctx                context.Context
}

const validBody = `{"plate_number":"粤B12345","driver_license":"42108319880906011X","event_time":"2026-11-28T10:30:00.123+08:00","event_type":"SIGN_IN","region_id":440300}`

// do sends r and returns the answer with its body read.
func (c *client) do(r req) (*http.Response, []byte, error) {
	c.t.Helper()
	if r.method == "" {
		r.method = http.MethodPost
	}
	if r.path == "" {
		r.path = Path
	}
	if r.body == "" {
		r.body = validBody
	}
	if r.mchid == "" {
		r.mchid = sharedKeys.MchID
	}
	if r.serial == "" {
		r.serial = sharedKeys.MerchantSerialNo
	}
	if r.nonce == "" {
		r.nonce = nonce()
	}
	if r.ts == 0 {
		r.ts = time.Now().Unix()
	}
	if r.contentType == "" {
		r.contentType = "application/json"
	}
	if r.ctx == nil {
		r.ctx = context.Background()
	}
	hr, err := http.NewRequestWithContext(r.ctx, r.method, c.base+r.path, bytes.NewBufferString(r.body))
	if err != nil {
		c.t.Fatal(err)
	}
	signed := r.body
	if r.signBody != nil {
		signed = *r.signBody
	}
	a := authorization{MchID: r.mchid, Nonce: r.nonce, Timestamp: r.ts, SerialNo: r.serial}
	sig, err := signSHA256RSA(c.key, requestMessage(r.method, hr.URL.RequestURI(), a, []byte(signed)))
	if err != nil {
		c.t.Fatal(err)
	}
	if !r.noAuth {
		hr.Header.Set("Authorization", fmt.Sprintf(`%s mchid="%s",nonce_str="%s",timestamp="%d",serial_no="%s",signature="%s"`,
			authScheme, r.mchid, r.nonce, r.ts, r.serial, sig))
	}
	hr.Header.Set("Content-Type", r.contentType)
	hr.Header.Set("Accept", "application/json")
	ua := "punchsim-test/1"
	if r.userAgent != nil {
		ua = *r.userAgent
	}
	hr.Header.Set("User-Agent", ua)
	if r.acceptSerial != "" {
		hr.Header.Set("Wechatpay-Serial", r.acceptSerial)
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// verifyAnswer checks an answer's signature with crypto/rsa against the key
// its Wechatpay-Serial names.
func verifyAnswer(t testing.TB, resp *http.Response, body []byte) error {
	t.Helper()
	var pub *rsa.PublicKey
	switch serial := resp.Header.Get("Wechatpay-Serial"); serial {
	case sharedKeys.PublicKeyID:
		k, err := loadPublicKey(sharedKeys.PublicKeyFile)
		if err != nil {
			t.Fatal(err)
		}
		pub = k
	case sharedKeys.PlatformSerialNo:
		der, err := readPEM(sharedKeys.PlatformCertFile, "CERTIFICATE")
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		pub = cert.PublicKey.(*rsa.PublicKey)
	default:
		return fmt.Errorf("unknown Wechatpay-Serial %q", serial)
	}
	var ts int64
	if _, err := fmt.Sscan(resp.Header.Get("Wechatpay-Timestamp"), &ts); err != nil {
		return fmt.Errorf("timestamp: %v", err)
	}
	if skew := time.Since(time.Unix(ts, 0)).Abs(); skew > window {
		return fmt.Errorf("timestamp %s off", skew)
	}
	return verifySHA256RSA(pub, answerMessage(ts, resp.Header.Get("Wechatpay-Nonce"), body), resp.Header.Get("Wechatpay-Signature"))
}
