package punchsim

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"time"
)

// CertificatesPath is WeChat Pay's platform-certificate download API,
// GET /v3/certificates.
const CertificatesPath = "/v3/certificates"

// certificateAAD is the associated_data WeChat Pay uses for certificates.
const certificateAAD = "certificate"

// certificates answers GET /v3/certificates as the public API description
// has it: the request is signed like any other (over GET, the path, the
// timestamp, the nonce and an empty body); the answer, 200 and signed,
// lists every platform certificate with its serial_no, effective_time and
// expire_time (RFC 3339, +08:00) and the certificate itself in
// encrypt_certificate: AEAD_AES_256_GCM under the merchant's APIv3 key
// (the key's 32 bytes), a 12-character nonce, associated_data
// "certificate", and the base64 of ciphertext followed by the 16-byte tag.
func (s *Server) certificates(w http.ResponseWriter, r *http.Request, x *Exchange) {
	x.Path = CertificatesPath
	s.mu.Lock()
	down := s.certsDown
	s.mu.Unlock()
	if down {
		x.Detail = "certificates endpoint unreachable"
		reset(w)
		return
	}
	if r.Method != http.MethodGet {
		s.reject(w, x, RejectMethod, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "only GET")
		return
	}
	if !s.authenticate(w, r, x, nil) {
		return
	}
	if len(s.apiv3Key) != 32 {
		s.answerError(w, x, http.StatusForbidden, "NO_AUTH", "APIv3 key not set for this merchant")
		return
	}
	type encrypted struct {
		Algorithm      string `json:"algorithm"`
		Nonce          string `json:"nonce"`
		AssociatedData string `json:"associated_data"`
		Ciphertext     string `json:"ciphertext"`
	}
	type entry struct {
		SerialNo      string    `json:"serial_no"`
		EffectiveTime string    `json:"effective_time"`
		ExpireTime    string    `json:"expire_time"`
		Encrypt       encrypted `json:"encrypt_certificate"`
	}
	var list struct {
		Data []entry `json:"data"`
	}
	cst := time.FixedZone("CST", 8*3600)
	for _, c := range s.PlatformCerts() {
		n := nonce()[:12]
		ct, err := sealAES256GCM(s.apiv3Key, []byte(n), []byte(certificateAAD), c.PEM)
		if err != nil {
			s.answerError(w, x, http.StatusInternalServerError, "SYSTEM_ERROR", err.Error())
			return
		}
		list.Data = append(list.Data, entry{
			SerialNo:      c.Serial,
			EffectiveTime: c.Cert.NotBefore.In(cst).Format(time.RFC3339),
			ExpireTime:    c.Cert.NotAfter.In(cst).Format(time.RFC3339),
			Encrypt: encrypted{Algorithm: "AEAD_AES_256_GCM", Nonce: n, AssociatedData: certificateAAD,
				Ciphertext: base64.StdEncoding.EncodeToString(ct)},
		})
	}
	body, _ := json.Marshal(list)
	w.Header().Set("Content-Type", "application/json")
	x.Detail = "certificates"
	s.answer(w, x, http.StatusOK, body, signNormal)
}

// SetCertificatesReachable makes GET /v3/certificates reset the
// connection (false) or answer again (true), while punches are still
// answered: a downloader that cannot reach the download API.
func (s *Server) SetCertificatesReachable(ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.certsDown = !ok
}

// sealAES256GCM encrypts plaintext with AES-256-GCM; the tag follows the
// ciphertext.
func sealAES256GCM(key, nonce, aad, plaintext []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCMWithNonceSize(block, len(nonce))
	if err != nil {
		return nil, err
	}
	return gcm.Seal(nil, nonce, plaintext, aad), nil
}

// randomKey returns n random alphanumerics, as an APIv3 key looks.
func randomKey(n int) string {
	const symbols = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = symbols[int(b[i])%len(symbols)]
	}
	return string(b)
}
