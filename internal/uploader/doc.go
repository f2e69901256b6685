// Package uploader delivers punches from the outbox to WeChat Pay's
// POST /v3/taxi-invoice/attendance/punch, signed, verified and in strict
// arrival order.
//
// The drain loop (Uploader.Run) takes the outbox head, sends it, and
// records the outcome durably before it looks at the next event:
//
//   - a 2xx whose signature verifies (Authenticator.Verify) is delivered;
//   - network errors, timeouts, 5xx, 429 and 2xx answers that do not verify
//     (unsigned, badly signed, out of the 5-minute window, or a
//     WECHATPAY/SIGNTEST/ probe) are retried with capped exponential
//     backoff and full jitter, plus a capped Retry-After when the server
//     sent one (a 429's spread is the throttling pace of pace.go rather
//     than the backoff); the event stays at the head and blocks the ones
//     behind it;
//   - 401, 403 and 404, WeChat Pay codes that name the caller's setup
//     (wechatpay.Classify: SIGN_ERROR, NO_AUTH, INVALID_REQUEST about a
//     serial or certificate…), a redirect, or a local signing failure mean
//     the terminal's configuration, key or clock is wrong for every event:
//     the event is held at the head, retried every HeldRetry (after
//     BackoffMin when the authenticator now signs with WeChat Pay's time),
//     and the condition shows in Status with WeChat Pay's answer and is
//     logged once;
//   - any other 4xx dead-letters that one event with the answer's status,
//     code, message and Request-ID, and the loop goes on, unless
//     SystemicStreak different events in a row got the same status and
//     code: then the event is held instead, as above.
//
// Two layers retry. The drain loop's backoff is persisted in the outbox
// (Record.NextAttempt) and is the long-term retry; it never gives up. Inside
// one attempt, go-retryablehttp makes at most a few quick retries for
// transient faults (a reset keep-alive connection, a 5xx blip), each
// re-signed with a fresh timestamp and nonce, and never waits longer than
// Config.TransportWaitMax for them.
//
// The loop sleeps until the head is due, or until Wake is called, and uses
// no CPU while idle. Authentication is pluggable (Authenticator): DirectAuth
// signs with the merchant key using the official SDK's signer, verifies
// with a wechatpay.KeySet chosen by Wechatpay-Serial, learns WeChat Pay's
// time from verified answers, and can download the platform certificates;
// nothing about signing leaks into the drain loop or the outbox. Client is
// one exchange (sign, send, verify, classify) for callers without a drain
// loop. docs/wechatpay.md has the table of codes.
package uploader
