package punchsim

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"time"

	"taxi-agent/internal/rxstamp"
)

// window is how far a signed timestamp may be from the fake's clock.
const window = 5 * time.Minute

// maxBody bounds a request body; a punch is a few hundred bytes.
const maxBody = 64 << 10

// signMode is how an answer is signed.
type signMode int

const (
	signNormal signMode = iota
	signNone
	signBad
	signOld
	signProbe
)

var faultSignModes = map[FaultKind]signMode{
	Unsigned:     signNone,
	BadSignature: signBad,
	OldTimestamp: signOld,
	SignTest:     signProbe,
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	x := Exchange{
		At:           s.now(),
		RequestID:    requestID(),
		AcceptSerial: r.Header.Get("Wechatpay-Serial"),
	}
	s.mu.Lock()
	s.seq++
	x.Seq = s.seq
	s.mu.Unlock()
	defer func() { s.record(x) }()

	if r.URL.Path == CertificatesPath {
		s.certificates(w, r, &x)
		return
	}
	if r.Method != http.MethodPost {
		s.reject(w, &x, RejectMethod, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "only POST")
		return
	}
	if r.URL.Path != Path {
		s.reject(w, &x, RejectPath, http.StatusNotFound, "RESOURCE_NOT_EXISTS", "no such path: "+r.URL.Path)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if c, ok := r.Context().Value(connKey{}).(net.Conn); ok {
		x.Received = rxstamp.Received(c)
	}
	if err != nil {
		x.Detail = "read body: " + err.Error()
		return
	}
	if len(body) > maxBody {
		s.reject(w, &x, RejectBody, http.StatusBadRequest, "PARAM_ERROR", "body too large")
		return
	}
	if !s.authenticate(w, r, &x, body) {
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		s.reject(w, &x, RejectContentType, http.StatusBadRequest, "PARAM_ERROR", "Content-Type must be application/json")
		return
	}
	if r.Header.Get("User-Agent") == "" {
		s.reject(w, &x, RejectUserAgent, http.StatusBadRequest, "PARAM_ERROR", "User-Agent is required")
		return
	}
	p, err := parsePunch(body)
	if err != nil {
		s.reject(w, &x, RejectBody, http.StatusBadRequest, "PARAM_ERROR", err.Error())
		return
	}
	x.Punch = &p

	f := s.nextFault(x)
	x.Fault = f.Kind
	if f.Delay > 0 {
		select {
		case <-time.After(f.Delay):
		case <-r.Context().Done():
			x.Detail = "client gone during delay"
			panic(http.ErrAbortHandler) // no implicit 200 on the way out
		case <-s.quitChan():
			x.Detail = "server stopped during delay"
			panic(http.ErrAbortHandler)
		}
	}
	switch f.Kind {
	case None, Stall:
		s.accept(w, &x)
	case Reset:
		x.Detail = "connection reset"
		reset(w)
	case Unsigned, BadSignature, OldTimestamp, SignTest:
		x.Status = http.StatusNoContent
		x.Detail = "204 not properly signed: " + string(f.Kind)
		s.answer(w, &x, http.StatusNoContent, nil, faultSignModes[f.Kind])
	default:
		ans, ok := errorAnswers[f.Kind]
		if !ok {
			ans = errorAnswer{http.StatusInternalServerError, "SYSTEM_ERROR", "unknown fault " + string(f.Kind)}
		}
		if f.Code != "" {
			ans.code = f.Code
		}
		if f.Message != "" {
			ans.message = f.Message
		}
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		x.Detail = ans.message
		s.answerError(w, &x, ans.status, ans.code, ans.message)
	}
}

// authenticate checks the Authorization header: scheme and fields, the
// merchant id and certificate serial, the signature (with crypto/rsa, not
// the SDK), the 5-minute window and nonce reuse.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, x *Exchange, body []byte) bool {
	a, err := parseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		s.reject(w, x, RejectAuthorization, http.StatusUnauthorized, "SIGN_ERROR", err.Error())
		return false
	}
	x.MchID, x.Nonce, x.Timestamp = a.MchID, a.Nonce, a.Timestamp
	if a.MchID != s.keys.MchID {
		s.reject(w, x, RejectMchID, http.StatusUnauthorized, "SIGN_ERROR", "unknown mchid "+a.MchID)
		return false
	}
	if a.SerialNo != s.keys.MerchantSerialNo {
		s.reject(w, x, RejectSerial, http.StatusUnauthorized, "SIGN_ERROR", "unknown certificate serial "+a.SerialNo)
		return false
	}
	if err := verifySHA256RSA(s.merchant, requestMessage(r.Method, r.URL.RequestURI(), a, body), a.Signature); err != nil {
		s.reject(w, x, RejectSignature, http.StatusUnauthorized, "SIGN_ERROR", "signature does not verify: "+err.Error())
		return false
	}
	if skew := x.At.Sub(time.Unix(a.Timestamp, 0)).Abs(); skew > window {
		s.reject(w, x, RejectTimestamp, http.StatusUnauthorized, "SIGN_ERROR",
			fmt.Sprintf("timestamp %d is %s off the server clock", a.Timestamp, skew.Round(time.Second)))
		return false
	}
	if !s.useNonce(a.Nonce, a.Timestamp) {
		s.reject(w, x, RejectNonceReused, http.StatusUnauthorized, "SIGN_ERROR", "nonce_str reused: "+a.Nonce)
		return false
	}
	return true
}

func (s *Server) accept(w http.ResponseWriter, x *Exchange) {
	x.Accepted = true
	s.answer(w, x, http.StatusNoContent, nil, signNormal)
}

func (s *Server) reject(w http.ResponseWriter, x *Exchange, reason string, status int, code, msg string) {
	x.Rejection, x.Detail = reason, msg
	s.answerError(w, x, status, code, msg)
}

func (s *Server) answerError(w http.ResponseWriter, x *Exchange, status int, code, msg string) {
	body, _ := json.Marshal(map[string]string{"code": code, "message": msg})
	w.Header().Set("Content-Type", "application/json")
	s.answer(w, x, status, body, signNormal)
}

// answer writes status and body, signed as mode says, with the key
// answerKey picks.
func (s *Server) answer(w http.ResponseWriter, x *Exchange, status int, body []byte, mode signMode) {
	x.Status = status
	h := w.Header()
	h.Set("Request-ID", x.RequestID)
	if mode != signNone {
		key, serial := s.answerKey(x.AcceptSerial)
		ts := s.now()
		if mode == signOld {
			ts = ts.Add(-OldTimestampAge)
		}
		n := nonce()
		sig := signAnswer(key, ts.Unix(), n, body, mode)
		h.Set("Wechatpay-Timestamp", fmt.Sprint(ts.Unix()))
		h.Set("Wechatpay-Nonce", n)
		h.Set("Wechatpay-Signature", sig)
		h.Set("Wechatpay-Serial", serial)
	}
	w.WriteHeader(status)
	if len(body) > 0 {
		_, _ = w.Write(body)
	}
}

func signAnswer(key *rsa.PrivateKey, ts int64, n string, body []byte, mode signMode) string {
	if mode == signProbe {
		b := make([]byte, 256)
		_, _ = rand.Read(b)
		return signTestPrefix + base64.StdEncoding.EncodeToString(b)
	}
	sig, err := signSHA256RSA(key, answerMessage(ts, n, body))
	if err != nil {
		return ""
	}
	if mode == signBad {
		raw, _ := base64.StdEncoding.DecodeString(sig)
		raw[len(raw)/2] ^= 0xff
		sig = base64.StdEncoding.EncodeToString(raw)
	}
	return sig
}

// reset drops the connection with a TCP RST and no answer.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	raw := conn
	if tc, ok := conn.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if tcp, ok := raw.(interface{ SetLinger(int) error }); ok {
		_ = tcp.SetLinger(0)
	}
	_ = raw.Close()
}

func requestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
