package gateway

import (
	"context"
	"net/http/httptrace"
)

// wireGate returns ctx traced so that every request made with it to WeChat
// Pay (the first try and any quick retry) takes one token from lim the
// moment its connection is in hand, just before the request is written:
// the rate is measured where WeChat Pay measures it, and a slow dial or
// TLS handshake cannot let several punches out at once. taken is called
// after the first token.
func wireGate(ctx context.Context, lim Limiter, taken func()) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) {
			// An error here is ctx ending: the request is then cut off by
			// the transport, and nothing reaches WeChat Pay.
			_ = lim.Wait(ctx)
			taken()
		},
	})
}
