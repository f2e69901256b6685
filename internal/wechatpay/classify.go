package wechatpay

import (
	"net/http"
	"strings"
)

// Class is what a WeChat Pay answer means for the event it answers and for
// the ones behind it. The table is in docs/wechatpay.md.
type Class int

// The classes of answer.
const (
	// ClassSuccess is a 2xx; it counts only once its signature verifies.
	ClassSuccess Class = iota + 1
	// ClassRetry is a 5xx or an unknown status: try the same event again
	// with backoff.
	ClassRetry
	// ClassThrottled is a 429 FREQUENCY_LIMITED: come back later, slower.
	ClassThrottled
	// ClassSetup names the caller's setup (keys, serials, merchant rights,
	// base URL, clock): every event would fail the same way, so the queue
	// is held, not dead-lettered.
	ClassSetup
	// ClassEvent is a refusal of this one event (PARAM_ERROR and other
	// 4xx): dead-letter it and go on.
	ClassEvent
)

var classNames = map[Class]string{
	ClassSuccess: "success", ClassRetry: "retry", ClassThrottled: "throttled",
	ClassSetup: "setup", ClassEvent: "event",
}

// String names the class.
func (c Class) String() string { return classNames[c] }

// setupCodes are WeChat Pay codes that name the caller's setup whatever
// the status they come with.
var setupCodes = map[string]bool{
	"SIGN_ERROR":            true, // 签名错误: merchant key, serial, mchid or clock
	"NO_AUTH":               true, // 商户无权限: the API is not enabled for this merchant
	"MCH_NOT_EXISTS":        true, // 商户号不存在
	"APPID_MCHID_NOT_MATCH": true,
	"INVALID_ACCESS":        true,
}

// Classify says what an answer with this HTTP status and WeChat Pay error
// body (code, message) means. Codes win over status where they name the
// caller's setup; INVALID_REQUEST is a setup problem when its message is
// about a serial number, certificate or public key (the request's
// Wechatpay-Serial or the merchant certificate), and an event problem
// otherwise.
func Classify(status int, code, message string) Class {
	switch {
	case status >= 200 && status < 300:
		return ClassSuccess
	case status < 500 && (RetryLater(status) || code == "FREQUENCY_LIMITED"):
		return ClassThrottled
	case status >= 500 || status < 200:
		return ClassRetry
	case setupCodes[code]:
		return ClassSetup
	case code == "INVALID_REQUEST" && AboutKeys(message):
		return ClassSetup
	case status == http.StatusUnauthorized, status == http.StatusForbidden, status == http.StatusNotFound:
		return ClassSetup
	case status >= 300 && status < 400:
		return ClassSetup // a redirect: base_url points at the wrong place
	}
	return ClassEvent
}

// RetryLater reports whether an answer with this HTTP status asks to be
// tried again later rather than now: 429 Too Many Requests (throttled) and
// 503 Service Unavailable, the two statuses whose Retry-After header the
// caller honours (RFC 9110 section 10.2.3). A wake-up (network back) must
// not cut such a wait short. This is the one place that names them:
// Classify, the uploader's quick-retry and Retry-After parsing, and its
// schedule for a stored record all ask here.
func RetryLater(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable
}

// keyWords mark a message about the caller's keys or serials.
var keyWords = []string{
	"serial", "certificate", "cert", "public key", "pub_key", "wechatpay-serial",
	"序列号", "证书", "公钥",
}

// AboutKeys reports whether an error message is about a serial number,
// certificate or public key.
func AboutKeys(message string) bool {
	m := strings.ToLower(message)
	for _, w := range keyWords {
		if strings.Contains(m, w) {
			return true
		}
	}
	return false
}

// timeWords mark a message about the request's timestamp.
var timeWords = []string{"timestamp", "time stamp", "时间戳", "时间"}

// AboutTimestamp reports whether a 401's message points at the request's
// timestamp (the terminal's clock) rather than at its key.
func AboutTimestamp(message string) bool {
	m := strings.ToLower(message)
	for _, w := range timeWords {
		if strings.Contains(m, w) {
			return true
		}
	}
	return false
}
