package punchsim

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// authScheme is the only Authorization scheme WeChat Pay API v3 accepts for
// RSA merchant keys.
const authScheme = "WECHATPAY2-SHA256-RSA2048"

// signTestPrefix marks WeChat Pay's probe signatures, which clients must
// never accept.
const signTestPrefix = "WECHATPAY/SIGNTEST/"

// authorization is a parsed Authorization header.
type authorization struct {
	MchID     string
	Nonce     string
	Timestamp int64
	SerialNo  string
	Signature string
}

var errMalformed = errors.New("malformed authorization")

// parseAuthorization splits
// `WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",timestamp="…",serial_no="…",signature="…"`.
// Every field must be present exactly once.
func parseAuthorization(h string) (authorization, error) {
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok || scheme != authScheme {
		return authorization{}, fmt.Errorf("%w: scheme is not %s", errMalformed, authScheme)
	}
	fields := map[string]string{}
	for part := range strings.SplitSeq(rest, ",") {
		key, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || len(val) < 2 || val[0] != '"' || val[len(val)-1] != '"' {
			return authorization{}, fmt.Errorf("%w: %q is not key=\"value\"", errMalformed, part)
		}
		if _, dup := fields[key]; dup {
			return authorization{}, fmt.Errorf("%w: %s given twice", errMalformed, key)
		}
		fields[key] = val[1 : len(val)-1]
	}
	for _, key := range []string{"mchid", "nonce_str", "timestamp", "serial_no", "signature"} {
		if fields[key] == "" {
			return authorization{}, fmt.Errorf("%w: no %s", errMalformed, key)
		}
	}
	if len(fields) != 5 {
		return authorization{}, fmt.Errorf("%w: unknown fields", errMalformed)
	}
	ts, err := strconv.ParseInt(fields["timestamp"], 10, 64)
	if err != nil {
		return authorization{}, fmt.Errorf("%w: timestamp %q", errMalformed, fields["timestamp"])
	}
	return authorization{
		MchID:     fields["mchid"],
		Nonce:     fields["nonce_str"],
		Timestamp: ts,
		SerialNo:  fields["serial_no"],
		Signature: fields["signature"],
	}, nil
}

// requestMessage is what the merchant signs:
// METHOD\nURL\nTIMESTAMP\nNONCE\nBODY\n.
func requestMessage(method, uri string, a authorization, body []byte) []byte {
	return fmt.Appendf(nil, "%s\n%s\n%d\n%s\n%s\n", method, uri, a.Timestamp, a.Nonce, body)
}

// answerMessage is what WeChat Pay signs: TIMESTAMP\nNONCE\nBODY\n.
func answerMessage(ts int64, nonce string, body []byte) []byte {
	return fmt.Appendf(nil, "%d\n%s\n%s\n", ts, nonce, body)
}

// verifySHA256RSA checks a base64 PKCS#1 v1.5 SHA-256 signature.
func verifySHA256RSA(pub *rsa.PublicKey, msg []byte, sigB64 string) error {
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil {
		return fmt.Errorf("decode signature: %w", err)
	}
	sum := sha256.Sum256(msg)
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig)
}

// signSHA256RSA returns the base64 PKCS#1 v1.5 SHA-256 signature of msg.
func signSHA256RSA(key *rsa.PrivateKey, msg []byte) (string, error) {
	sum := sha256.Sum256(msg)
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// nonce returns 32 random alphanumerics, as WeChat Pay's nonces look.
func nonce() string {
	const symbols = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = symbols[int(b[i])%len(symbols)]
	}
	return string(b)
}

func readPEM(path, kind string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != kind {
		return nil, fmt.Errorf("read %s: no %s PEM block", path, kind)
	}
	return block.Bytes, nil
}

func loadPrivateKey(path string) (*rsa.PrivateKey, error) {
	der, err := readPEM(path, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("parse %s: not an RSA key", path)
	}
	return rk, nil
}

func loadPublicKey(path string) (*rsa.PublicKey, error) {
	der, err := readPEM(path, "PUBLIC KEY")
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	rk, ok := key.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("parse %s: not an RSA key", path)
	}
	return rk, nil
}
