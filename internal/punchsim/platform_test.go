package punchsim

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestCertificatesDownload checks GET /v3/certificates against the public
// API description, decrypting with crypto/cipher: every served
// certificate, AEAD_AES_256_GCM under the APIv3 key, signed like any
// answer; a rotation adds the new one and signs with it.
func TestCertificatesDownload(t *testing.T) {
	s := newServer(t, Options{})
	s.SetAnswerSigner(SignWithCertificate)
	c := newClient(t, s)
	key, err := os.ReadFile(sharedKeys.APIv3KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	download := func() ([]string, string) {
		t.Helper()
		resp, body, err := c.do(req{method: http.MethodGet, path: CertificatesPath, body: " "[:0], signBody: new(string)})
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		var list struct {
			Data []struct {
				SerialNo      string `json:"serial_no"`
				EffectiveTime string `json:"effective_time"`
				ExpireTime    string `json:"expire_time"`
				Encrypt       struct {
					Algorithm      string `json:"algorithm"`
					Nonce          string `json:"nonce"`
					AssociatedData string `json:"associated_data"`
					Ciphertext     string `json:"ciphertext"`
				} `json:"encrypt_certificate"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &list); err != nil {
			t.Fatal(err)
		}
		var serials []string
		for _, d := range list.Data {
			e := d.Encrypt
			if e.Algorithm != "AEAD_AES_256_GCM" || e.AssociatedData != "certificate" || len(e.Nonce) != 12 {
				t.Errorf("encrypt_certificate %+v", e)
			}
			if _, err := time.Parse(time.RFC3339, d.ExpireTime); err != nil || !strings.HasSuffix(d.ExpireTime, "+08:00") {
				t.Errorf("expire_time %q", d.ExpireTime)
			}
			block, _ := aes.NewCipher([]byte(strings.TrimSpace(string(key))))
			gcm, _ := cipher.NewGCM(block)
			ct, _ := base64.StdEncoding.DecodeString(e.Ciphertext)
			plain, err := gcm.Open(nil, []byte(e.Nonce), ct, []byte(e.AssociatedData))
			if err != nil {
				t.Fatalf("decrypt %s: %v", d.SerialNo, err)
			}
			if !strings.HasPrefix(string(plain), "-----BEGIN CERTIFICATE-----") {
				t.Errorf("plaintext is not a PEM certificate: %.40q", plain)
			}
			serials = append(serials, d.SerialNo)
		}
		return serials, resp.Header.Get("Wechatpay-Serial")
	}

	serials, signer := download()
	if !slices.Equal(serials, []string{sharedKeys.PlatformSerialNo}) || signer != sharedKeys.PlatformSerialNo {
		t.Fatalf("before rotation: %v signed by %s", serials, signer)
	}
	next, err := s.RotatePlatformCert()
	if err != nil {
		t.Fatal(err)
	}
	serials, signer = download()
	if !slices.Equal(serials, []string{sharedKeys.PlatformSerialNo, next.Serial}) || signer != next.Serial {
		t.Fatalf("after rotation: %v signed by %s", serials, signer)
	}
	// The old one retired: only the new one is served, and still signs.
	s.RetirePlatformCert(sharedKeys.PlatformSerialNo)
	serials, signer = download()
	if !slices.Equal(serials, []string{next.Serial}) || signer != next.Serial {
		t.Fatalf("after retiring the old one: %v signed by %s", serials, signer)
	}
	// A punch answer is signed by the new certificate too, and verifies
	// with its key.
	resp, body, err := c.do(req{acceptSerial: sharedKeys.PlatformSerialNo})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Header.Get("Wechatpay-Serial"); got != next.Serial {
		t.Fatalf("punch answer signed by %s, want the rotated %s", got, next.Serial)
	}
	var ts int64
	_ = json.Unmarshal([]byte(resp.Header.Get("Wechatpay-Timestamp")), &ts)
	if err := verifySHA256RSA(next.Cert.PublicKey.(*rsa.PublicKey), answerMessage(ts, resp.Header.Get("Wechatpay-Nonce"), body),
		resp.Header.Get("Wechatpay-Signature")); err != nil {
		t.Fatal(err)
	}

	// The merchant switches to the public key: answers follow.
	s.SetAnswerSigner(SignWithPublicKey)
	resp, body, err = c.do(req{acceptSerial: next.Serial})
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyAnswer(t, resp, body); err != nil || resp.Header.Get("Wechatpay-Serial") != sharedKeys.PublicKeyID {
		t.Fatalf("after the switch: %v, serial %s", err, resp.Header.Get("Wechatpay-Serial"))
	}
}

// TestClockSkew: a fake whose clock is 10 minutes ahead refuses a request
// stamped with the real time (401 SIGN_ERROR about the timestamp) and
// signs its answers with its own time.
func TestClockSkew(t *testing.T) {
	s := newServer(t, Options{})
	s.SetClockSkew(10 * time.Minute)
	c := newClient(t, s)
	resp, body, err := c.do(req{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "SIGN_ERROR") || !strings.Contains(string(body), "timestamp") {
		t.Fatalf("status %d %s", resp.StatusCode, body)
	}
	var ts int64
	_ = json.Unmarshal([]byte(resp.Header.Get("Wechatpay-Timestamp")), &ts)
	if d := time.Unix(ts, 0).Sub(time.Now()); d < 9*time.Minute || d > 11*time.Minute {
		t.Fatalf("answer timestamp %s from now, want about +10m", d)
	}
	resp, _, err = c.do(req{ts: time.Now().Add(10 * time.Minute).Unix()})
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("request in the fake's time: %v %v", resp.StatusCode, err)
	}
}
