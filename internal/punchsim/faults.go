package punchsim

import "time"

// FaultKind names one way the fake misbehaves for a valid request.
type FaultKind string

// The faults the fake can inject. None answers a signed 204 and records the
// punch as accepted; every other kind leaves the punch unaccepted, except
// Stall, which answers normally after its delay if the client is still
// waiting.
const (
	None         FaultKind = ""
	ServerError  FaultKind = "server_error" // 500 SYSTEM_ERROR
	Unavailable  FaultKind = "unavailable"  // 503 SYSTEM_ERROR, with Retry-After if set
	RateLimited  FaultKind = "rate_limited" // 429 FREQUENCY_LIMITED, with Retry-After if set
	BadRequest   FaultKind = "bad_request"  // 400 PARAM_ERROR
	Unauthorized FaultKind = "unauthorized" // 401 SIGN_ERROR
	Forbidden    FaultKind = "forbidden"    // 403 NO_AUTH
	NotFound     FaultKind = "not_found"    // 404 RESOURCE_NOT_EXISTS
	// InvalidSerial is 400 INVALID_REQUEST about the request's
	// Wechatpay-Serial: a terminal configured with a key WeChat Pay does
	// not sign with (a systemic rejection).
	InvalidSerial FaultKind = "invalid_serial"
	Reset         FaultKind = "reset"         // TCP reset, no answer
	Stall         FaultKind = "stall"         // wait Delay, then answer normally (accepted)
	Unsigned      FaultKind = "unsigned"      // 204 without Wechatpay-* headers
	BadSignature  FaultKind = "bad_signature" // 204 whose signature does not verify
	OldTimestamp  FaultKind = "old_timestamp" // 204 correctly signed 10 minutes in the past
	SignTest      FaultKind = "signtest"      // 204 with a WECHATPAY/SIGNTEST/ probe signature
)

// OldTimestampAge is how far in the past an OldTimestamp answer is signed.
const OldTimestampAge = 10 * time.Minute

// Fault is what the fake does with one valid request.
type Fault struct {
	Kind FaultKind
	// RetryAfter is the Retry-After header value for RateLimited and
	// Unavailable, e.g. "3600"; empty sends none.
	RetryAfter string
	// Delay is how long to wait before answering: the whole point of
	// Stall, and a slow answer for any other kind. A client that gives up
	// meanwhile gets no answer.
	Delay time.Duration
	// Code and Message override the error body's defaults.
	Code, Message string
}

// errorAnswer is the status and default error body of an HTTP error fault.
type errorAnswer struct {
	status        int
	code, message string
}

var errorAnswers = map[FaultKind]errorAnswer{
	ServerError:   {500, "SYSTEM_ERROR", "系统错误"},
	Unavailable:   {503, "SYSTEM_ERROR", "服务不可用"},
	RateLimited:   {429, "FREQUENCY_LIMITED", "频率超限"},
	BadRequest:    {400, "PARAM_ERROR", "参数错误"},
	Unauthorized:  {401, "SIGN_ERROR", "签名错误"},
	Forbidden:     {403, "NO_AUTH", "商户无权限"},
	NotFound:      {404, "RESOURCE_NOT_EXISTS", "资源不存在"},
	InvalidSerial: {400, "INVALID_REQUEST", "平台证书序列号Wechatpay-Serial错误"},
}
