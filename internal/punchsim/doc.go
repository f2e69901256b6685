// Package punchsim is a fake of WeChat Pay's punch endpoint,
// POST /v3/taxi-invoice/attendance/punch, for tests and for `agent demo`.
//
// It serves HTTPS on loopback with a throwaway CA (see GenerateKeys) and
// checks every request the way WeChat Pay does, independently of the
// official SDK the agent uses: the Authorization header is parsed and its
// SHA256withRSA signature verified with crypto/rsa against the merchant's
// public key, the timestamp must be within 5 minutes of the fake's clock, a
// nonce may not be used twice, and the JSON body must hold exactly
// plate_number, driver_license, event_time, event_type and region_id in
// their formats. A valid request is answered 204, signed with the fake's
// WeChat Pay public key (Wechatpay-Serial PUB_KEY_ID_…) or, when the
// request names it in Wechatpay-Serial, its platform certificate.
//
// WeChat Pay's key changes can be played: several platform certificates,
// a rotation mid-run (RotatePlatformCert, which also serves the new one on
// GET /v3/certificates, encrypted under the APIv3 key as the public API
// description has it), a merchant's switch from certificate-signed to
// public-key-signed answers (SetAnswerSigner), and a WeChat Pay clock that
// is off from the terminal's (SetClockSkew).
//
// Faults are programmable: Inject queues faults for the next valid
// requests, Options.Faults decides per request. Every fault the uploader
// must survive is there: 5xx, 429 with Retry-After, 400 PARAM_ERROR, 400
// INVALID_REQUEST about the serial, 401, 403, 404, a reset connection, a stalled answer, and 204 answers that are
// unsigned, badly signed, out of the time window or carry a
// WECHATPAY/SIGNTEST/ probe signature. An outage is Stop (connections
// refused) and Start (back on the same address).
//
// Every exchange is recorded in order (Exchanges), accepted punches too
// (Accepted), with counters (Stats); Options.OnExchange sees each one as it
// happens. An exchange carries when its handler took it up (At) and, on
// Linux, when the request reached the host's kernel (Received, the
// kernel's receive timestamp), so that a rate can be counted as the
// network delivered it rather than as the fake's goroutines were
// scheduled.
package punchsim
