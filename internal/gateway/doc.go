// Package gateway is taxi-gateway: the fleet's single holder of the
// merchant key and of WeChat Pay's rate.
//
// Terminals in gateway mode send the same punch request they would send to
// WeChat Pay, unsigned, over mutual TLS. The gateway
//
//   - accepts only client certificates issued by the fleet CA (ca.go) and
//     not revoked; the revocation list is a file re-read when it changes
//     (revocation.go), checked at the handshake and on every request;
//   - refuses a punch for a plate other than the one the certificate names
//     (403 PLATE_MISMATCH), before anything is sent to WeChat Pay;
//   - answers a punch it delivered within the last hour (same plate,
//     licence, type and time) 204 again without another call, and joins a
//     retry to the same punch still in flight (dedup.go);
//   - admits punches at one fleet-wide rate: a round-robin queue across
//     terminals (queue.go) where a punch waits at most limit.max_wait (past
//     that it is answered 429 with a Retry-After sized to the queue ahead
//     and spread one slot apart), and a token taken in the request's
//     write to WeChat Pay (wire.go) from a token bucket of limit.rate per
//     second held within one second plus limit.jitter, counted from when
//     each write returned (limiter.go), or from GCRA in Redis shared by
//     every replica (redislimit);
//   - sends each admitted punch to WeChat Pay signed with the merchant key
//     through uploader.Client, the very code direct-mode terminals use, and
//     relays the verdict (relay.go): 204 only for a verified 204, WeChat
//     Pay's own status and body for a 4xx, 503 with Retry-After when WeChat
//     Pay is unreachable, answers 5xx or unverifiable.
//
// The relay is synchronous: the terminal's outbox stays the only store of a
// punch, so the terminal's CLI shows the real outcome.
package gateway
