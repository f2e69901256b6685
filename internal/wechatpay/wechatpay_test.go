package wechatpay

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func newCert(t *testing.T, serial int64, notBefore, notAfter time.Time) (*x509.Certificate, *rsa.PrivateKey, []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "t"}, NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func sign(t *testing.T, key *rsa.PrivateKey, msg string) string {
	sum := sha256.Sum256([]byte(msg))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// TestKeySet: every certificate of a file, and a public key, verify the
// answers whose serial names them; expiry is sorted for check-config.
func TestKeySet(t *testing.T) {
	now := time.Now()
	_, oldKey, oldPEM := newCert(t, 0x0A, now.Add(-400*24*time.Hour), now.Add(10*24*time.Hour))
	_, newKey, newPEM := newCert(t, 0x0B, now.Add(-time.Hour), now.Add(400*24*time.Hour))
	_, _, deadPEM := newCert(t, 0x0C, now.Add(-800*24*time.Hour), now.Add(-time.Hour))
	pubKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs.pem")
	os.WriteFile(certs, append(append(append([]byte{}, oldPEM...), newPEM...), deadPEM...), 0o644)
	pubDER, _ := x509.MarshalPKIXPublicKey(&pubKey.PublicKey)
	pub := filepath.Join(dir, "pub.pem")
	os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644)

	ks, err := LoadKeySet(KeySetFiles{PublicKeyID: "PUB_KEY_ID_0123", PublicKeyFile: pub, PlatformCertFile: certs}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(ks.Keys()); got != 4 {
		t.Fatalf("%d keys, want the public key and 3 certificates", got)
	}
	if ks.AcceptSerial() != "PUB_KEY_ID_0123" {
		t.Errorf("accept serial %s", ks.AcceptSerial())
	}
	for _, tc := range []struct {
		serial string
		key    *rsa.PrivateKey
	}{{"0A", oldKey}, {"0b", newKey}, {"PUB_KEY_ID_0123", pubKey}} {
		if err := ks.Verify(t.Context(), tc.serial, "m\n", sign(t, tc.key, "m\n")); err != nil {
			t.Errorf("serial %s: %v", tc.serial, err)
		}
	}
	if err := ks.Verify(t.Context(), "0A", "m\n", sign(t, newKey, "m\n")); err == nil {
		t.Error("a signature by another key verified")
	}
	if err := ks.Verify(t.Context(), "0D", "m\n", sign(t, newKey, "m\n")); !errors.Is(err, ErrUnknownSerial) {
		t.Errorf("unknown serial: %v", err)
	}
	expired, expiring := ks.Expiry(now)
	if len(expired) != 1 || expired[0].Serial != "0C" || len(expiring) != 1 || expiring[0].Serial != "0A" {
		t.Errorf("expired %v, expiring %v", expired, expiring)
	}
	// Certificates only: the newest is asked for.
	ks2, err := LoadKeySet(KeySetFiles{PlatformCertFile: certs}, nil, "")
	if err != nil || ks2.AcceptSerial() != "0B" {
		t.Errorf("accept serial %s, %v", ks2.AcceptSerial(), err)
	}
}

// TestClassify is the code table of docs/wechatpay.md.
func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		status        int
		code, message string
		want          Class
	}{
		{204, "", "", ClassSuccess},
		{500, "SYSTEM_ERROR", "系统错误", ClassRetry},
		{503, "", "", ClassRetry},
		{429, "FREQUENCY_LIMITED", "频率超限", ClassThrottled},
		{400, "PARAM_ERROR", "参数错误", ClassEvent},
		{400, "INVALID_REQUEST", "平台证书序列号Wechatpay-Serial错误", ClassSetup},
		{400, "INVALID_REQUEST", "Wechatpay-Serial is not a valid serial", ClassSetup},
		{400, "INVALID_REQUEST", "event_time格式错误", ClassEvent},
		{400, "SIGN_ERROR", "签名错误", ClassSetup},
		{401, "SIGN_ERROR", "签名错误", ClassSetup},
		{403, "NO_AUTH", "商户无权限", ClassSetup},
		{400, "NO_AUTH", "", ClassSetup},
		{404, "RESOURCE_NOT_EXISTS", "", ClassSetup},
		{302, "", "", ClassSetup},
		{409, "", "", ClassEvent},
	} {
		if got := Classify(tc.status, tc.code, tc.message); got != tc.want {
			t.Errorf("Classify(%d, %s, %q) = %s, want %s", tc.status, tc.code, tc.message, got, tc.want)
		}
	}
}

// TestRetryLater: only 429 and 503 ask for a later try; Classify calls the
// 429 throttled and the 503 a plain retry.
func TestRetryLater(t *testing.T) {
	for status, want := range map[int]bool{
		429: true, 503: true,
		200: false, 204: false, 400: false, 401: false, 404: false, 500: false, 501: false, 502: false, 504: false,
	} {
		if got := RetryLater(status); got != want {
			t.Errorf("RetryLater(%d) = %v, want %v", status, got, want)
		}
	}
	if c := Classify(400, "FREQUENCY_LIMITED", ""); c != ClassThrottled {
		t.Errorf("Classify(400 FREQUENCY_LIMITED) = %s, want throttled", c)
	}
	if c := Classify(503, "FREQUENCY_LIMITED", ""); c != ClassRetry {
		t.Errorf("Classify(503 FREQUENCY_LIMITED) = %s, want retry", c)
	}
}

// TestServerClockOnBootClock: the estimate follows the boot clock, so a
// step of the wall clock changes the offset, not WeChat Pay's time.
func TestServerClockOnBootClock(t *testing.T) {
	wall := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	boot := 100 * time.Second
	c := NewServerClock(func() time.Time { return wall }, func() time.Duration { return boot })
	if _, ok := c.Now(); ok {
		t.Fatal("known before any answer")
	}
	server := wall.Add(10 * time.Minute)
	c.Learn(server.Unix())
	boot += time.Minute
	wall = wall.Add(time.Minute)
	if got, _ := c.Now(); got.Sub(server.Add(time.Minute)).Abs() > time.Second {
		t.Fatalf("Now %s, want %s", got, server.Add(time.Minute))
	}
	if off, _ := c.Offset(); (off - 10*time.Minute).Abs() > time.Second {
		t.Fatalf("offset %s", off)
	}
	wall = wall.Add(10 * time.Minute) // time sync fixes the wall clock
	if off, _ := c.Offset(); off.Abs() > time.Second {
		t.Fatalf("offset after the wall clock was fixed: %s", off)
	}
	if st := c.Status(); !st.Known || st.Answers != 1 {
		t.Fatalf("status %+v", st)
	}
}

func TestReadSignedAnswer(t *testing.T) {
	h := http.Header{}
	if _, err := ReadSignedAnswer(h, nil); !errors.Is(err, ErrUnsigned) {
		t.Errorf("no headers: %v", err)
	}
	h.Set("Wechatpay-Timestamp", "1700000000")
	h.Set("Wechatpay-Nonce", "n")
	h.Set("Wechatpay-Serial", "PUB_KEY_ID_1")
	h.Set("Wechatpay-Signature", SignTestPrefix+"x")
	if _, err := ReadSignedAnswer(h, nil); !errors.Is(err, ErrSignTest) {
		t.Errorf("probe: %v", err)
	}
	h.Set("Wechatpay-Signature", "abc")
	a, err := ReadSignedAnswer(h, []byte(`{}`))
	if err != nil || a.Message != "1700000000\nn\n{}\n" {
		t.Errorf("%q %v", a.Message, err)
	}
}
