package wechatpay

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/core/consts"
)

// SignTestPrefix marks WeChat Pay's probe signatures, which a client must
// never accept.
const SignTestPrefix = "WECHATPAY/SIGNTEST/"

// Errors of answer signatures.
var (
	// ErrUnsigned means an answer lacks a Wechatpay-* signature header.
	ErrUnsigned = errors.New("answer is not signed")
	// ErrSignTest means the answer carries a WECHATPAY/SIGNTEST/ probe.
	ErrSignTest = errors.New("answer carries a WECHATPAY/SIGNTEST/ probe signature")
	// ErrBadTimestamp means Wechatpay-Timestamp is not a number.
	ErrBadTimestamp = errors.New("answer timestamp is not a number")
)

// SignedAnswer is the signature part of an answer: what WeChat Pay signed
// (Wechatpay-Timestamp\nWechatpay-Nonce\nbody\n) and with which key.
type SignedAnswer struct {
	Serial    string
	Timestamp int64 // Unix seconds
	Nonce     string
	Signature string
	Message   string
}

// Time is the answer's timestamp.
func (a SignedAnswer) Time() time.Time { return time.Unix(a.Timestamp, 0) }

// ReadSignedAnswer takes the Wechatpay-* headers of an answer and builds
// the message its signature covers, in the SDK validator's format. The
// error wraps ErrUnsigned, ErrSignTest or ErrBadTimestamp.
func ReadSignedAnswer(h http.Header, body []byte) (SignedAnswer, error) {
	for _, k := range []string{consts.WechatPayTimestamp, consts.WechatPayNonce, consts.WechatPaySignature, consts.WechatPaySerial} {
		if strings.TrimSpace(h.Get(k)) == "" {
			return SignedAnswer{}, fmt.Errorf("%w: no %s", ErrUnsigned, k)
		}
	}
	a := SignedAnswer{
		Serial:    strings.TrimSpace(h.Get(consts.WechatPaySerial)),
		Nonce:     strings.TrimSpace(h.Get(consts.WechatPayNonce)),
		Signature: strings.TrimSpace(h.Get(consts.WechatPaySignature)),
	}
	if strings.HasPrefix(a.Signature, SignTestPrefix) {
		return a, ErrSignTest
	}
	ts, err := strconv.ParseInt(strings.TrimSpace(h.Get(consts.WechatPayTimestamp)), 10, 64)
	if err != nil {
		return a, fmt.Errorf("%w: %q", ErrBadTimestamp, h.Get(consts.WechatPayTimestamp))
	}
	a.Timestamp = ts
	a.Message = fmt.Sprintf("%d\n%s\n%s\n", ts, a.Nonce, body)
	return a, nil
}
