package punchsim

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"taxi-agent/internal/config"
)

// Keys names the throwaway key material GenerateKeys wrote. The first group
// is what the agent's config needs (wechatpay.* keys); the second is the
// fake's own secrets.
type Keys struct {
	MchID            string `json:"mchid"`              // wechatpay.mchid
	MerchantSerialNo string `json:"merchant_serial_no"` // wechatpay.merchant_serial_no
	PrivateKeyFile   string `json:"private_key_file"`   // wechatpay.private_key_file (PKCS#8, mode 0600)
	PublicKeyID      string `json:"public_key_id"`      // wechatpay.public_key_id
	PublicKeyFile    string `json:"public_key_file"`    // wechatpay.public_key_file
	PlatformCertFile string `json:"platform_cert_file"` // wechatpay.platform_cert_file
	PlatformSerialNo string `json:"platform_serial_no"` // serial of PlatformCertFile, upper-case hex
	CAFile           string `json:"ca_file"`            // wechatpay.ca_file: the root of the fake's TLS certificate
	APIv3KeyFile     string `json:"apiv3_key_file"`     // wechatpay.apiv3_key_file (32 characters, mode 0600)

	MerchantPublicKeyFile string `json:"merchant_public_key_file"` // what the fake verifies requests with
	PublicKeySignerFile   string `json:"public_key_signer_file"`   // private half of PublicKeyFile
	PlatformKeyFile       string `json:"platform_key_file"`        // private key of PlatformCertFile
	TLSCertFile           string `json:"tls_cert_file"`            // server certificate for 127.0.0.1, ::1, localhost
	TLSKeyFile            string `json:"tls_key_file"`
}

// manifest is the file in the key directory that LoadKeys reads.
const manifest = "keys.json"

// GenerateKeys writes fresh throwaway keys into dir: a merchant RSA key
// (mode 0600), a WeChat Pay public key with a PUB_KEY_ID_…, a platform
// certificate for platform-certificate mode, and a TLS CA (ca.pem) with a
// server certificate for loopback. The paths it returns can go straight into
// an agent config. It also writes keys.json for LoadKeys.
func GenerateKeys(dir string) (Keys, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Keys{}, fmt.Errorf("create key directory: %w", err)
	}
	k := Keys{
		MchID:                 "1900000001",
		MerchantSerialNo:      randomHex(20),
		PublicKeyID:           "PUB_KEY_ID_01" + randomDigits(32),
		PrivateKeyFile:        filepath.Join(dir, "apiclient_key.pem"),
		MerchantPublicKeyFile: filepath.Join(dir, "apiclient_pub.pem"),
		PublicKeyFile:         filepath.Join(dir, "wechatpay_pub.pem"),
		PublicKeySignerFile:   filepath.Join(dir, "wechatpay_pub_signer.pem"),
		PlatformCertFile:      filepath.Join(dir, "wechatpay_platform.pem"),
		PlatformKeyFile:       filepath.Join(dir, "wechatpay_platform_key.pem"),
		CAFile:                filepath.Join(dir, "ca.pem"),
		TLSCertFile:           filepath.Join(dir, "server.pem"),
		TLSKeyFile:            filepath.Join(dir, "server_key.pem"),
		APIv3KeyFile:          filepath.Join(dir, "apiv3.key"),
	}
	if err := os.WriteFile(k.APIv3KeyFile, []byte(randomKey(32)+"\n"), 0o600); err != nil {
		return Keys{}, fmt.Errorf("write apiv3 key: %w", err)
	}

	merchant, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return Keys{}, fmt.Errorf("generate merchant key: %w", err)
	}
	if err := writePrivate(k.PrivateKeyFile, merchant); err != nil {
		return Keys{}, err
	}
	if err := writePublic(k.MerchantPublicKeyFile, &merchant.PublicKey); err != nil {
		return Keys{}, err
	}

	pub, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return Keys{}, fmt.Errorf("generate wechat pay public key: %w", err)
	}
	if err := writePrivate(k.PublicKeySignerFile, pub); err != nil {
		return Keys{}, err
	}
	if err := writePublic(k.PublicKeyFile, &pub.PublicKey); err != nil {
		return Keys{}, err
	}

	platform, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return Keys{}, fmt.Errorf("generate platform key: %w", err)
	}
	now := time.Now()
	serialBytes := make([]byte, 20)
	_, _ = rand.Read(serialBytes)
	serialBytes[0] = serialBytes[0]&0x7f | 0x10 // positive, 20 bytes, no leading zero
	serial := new(big.Int).SetBytes(serialBytes)
	platformTmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "Tenpay.com sign (punchsim)", Organization: []string{"punchsim"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(5 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, platformTmpl, platformTmpl, &platform.PublicKey, platform)
	if err != nil {
		return Keys{}, fmt.Errorf("create platform certificate: %w", err)
	}
	k.PlatformSerialNo = fmt.Sprintf("%X", serial.Bytes())
	if err := writePEM(k.PlatformCertFile, "CERTIFICATE", der, 0o644); err != nil {
		return Keys{}, err
	}
	if err := writePrivate(k.PlatformKeyFile, platform); err != nil {
		return Keys{}, err
	}

	if err := generateTLS(k, now); err != nil {
		return Keys{}, err
	}

	data, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return Keys{}, fmt.Errorf("encode key manifest: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, manifest), data, 0o600); err != nil {
		return Keys{}, fmt.Errorf("write key manifest: %w", err)
	}
	return k, nil
}

// LoadKeys reads the keys.json GenerateKeys left in dir, so that a demo can
// reuse its keys instead of generating new ones.
func LoadKeys(dir string) (Keys, error) {
	data, err := os.ReadFile(filepath.Join(dir, manifest))
	if err != nil {
		return Keys{}, fmt.Errorf("read key manifest: %w", err)
	}
	var k Keys
	if err := json.Unmarshal(data, &k); err != nil {
		return Keys{}, fmt.Errorf("decode key manifest: %w", err)
	}
	return k, nil
}

// generateTLS writes an ECDSA CA and a loopback server certificate signed
// by it.
func generateTLS(k Keys, now time.Time) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate tls ca key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "punchsim test CA", Organization: []string{"punchsim"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(5 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("create tls ca: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return fmt.Errorf("parse tls ca: %w", err)
	}
	if err := writePEM(k.CAFile, "CERTIFICATE", caDER, 0o644); err != nil {
		return err
	}

	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate tls server key: %w", err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost", Organization: []string{"punchsim"}},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(5 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("create tls server certificate: %w", err)
	}
	if err := writePEM(k.TLSCertFile, "CERTIFICATE", leafDER, 0o644); err != nil {
		return err
	}
	leafKeyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		return fmt.Errorf("encode tls server key: %w", err)
	}
	return writePEM(k.TLSKeyFile, "PRIVATE KEY", leafKeyDER, 0o600)
}

func writePrivate(path string, key *rsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode private key %s: %w", filepath.Base(path), err)
	}
	return writePEM(path, "PRIVATE KEY", der, 0o600)
}

func writePublic(path string, key *rsa.PublicKey) error {
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return fmt.Errorf("encode public key %s: %w", filepath.Base(path), err)
	}
	return writePEM(path, "PUBLIC KEY", der, 0o644)
}

// writePEM writes one PEM block with exactly the given mode, whatever the
// umask, replacing any earlier file.
func writePEM(path, kind string, der []byte, mode os.FileMode) error {
	data := pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
	_ = os.Remove(path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("chmod %s: %w", filepath.Base(path), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}

// randomHex returns n random bytes as upper-case hex, like a certificate
// serial number.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return strings.ToUpper(fmt.Sprintf("%x", b))
}

func randomDigits(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = '0' + b[i]%10
	}
	return string(b)
}

// WeChatPay is the wechatpay section of an agent config that talks to a
// fake at baseURL with these keys (public-key mode, the fake's CA trusted).
func (k Keys) WeChatPay(baseURL string) config.WeChatPay {
	return config.WeChatPay{
		BaseURL: baseURL, MchID: k.MchID, MerchantSerialNo: k.MerchantSerialNo,
		PrivateKeyFile: k.PrivateKeyFile, PublicKeyID: k.PublicKeyID,
		PublicKeyFile: k.PublicKeyFile, CAFile: k.CAFile,
	}
}
