// Package wechatpay holds the parts of talking to WeChat Pay API v3 that
// do not depend on what is sent: the set of keys that verify answers
// (KeySet), WeChat Pay's time as learned from verified answers
// (ServerClock), the platform-certificate downloader with its stored last
// good set (CertDownloader), and the classification of an answer by HTTP
// status and WeChat Pay's error code (Classify).
//
// Signatures are checked with the official SDK's verifiers
// (github.com/wechatpay-apiv3/wechatpay-go/core/auth/verifiers); the
// downloader is the SDK's core/downloader. The table of codes and what each
// does is in docs/wechatpay.md.
package wechatpay
