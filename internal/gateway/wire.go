package gateway

import (
	"context"
	"crypto/tls"
	"net"
	"net/http/httptrace"
	"sync"
)

// wireGate returns ctx traced so that every request made with it to WeChat
// Pay (the first try and any quick retry) takes one token from lim as it
// is written: when the connection is in hand, the request is armed on it
// (wireConn.arm), and the connection's next write, the request's, first
// waits for the token. The rate is taken where WeChat Pay counts it, on
// the wire: neither a slow dial or TLS handshake nor a goroutine that gets
// the CPU late between its token and its write can let several punches
// out together. taken is called after each token's write.
func wireGate(ctx context.Context, lim Limiter, taken func()) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			if wc := wireConnOf(info.Conn); wc != nil {
				wc.arm(ctx, lim, taken)
				return
			}
			// A connection the gateway did not dial (none today): the
			// token is taken here, as near the write as this allows. An
			// error is ctx ending, and the transport then cuts the
			// request off.
			_ = lim.Wait(ctx)
			taken()
		},
	})
}

// wireConn is a connection to WeChat Pay, beneath TLS, whose requests take
// their token as they are written (see wireGate). Writes that are not an
// armed request's (the TLS handshake) pass straight through.
type wireConn struct {
	net.Conn

	mu    sync.Mutex
	armed *armedRequest
}

// armedRequest is the request about to be written on a wireConn.
type armedRequest struct {
	ctx   context.Context
	lim   Limiter
	taken func()
}

// wrapWire is uploader.Config.WrapConn for the gateway's client.
func wrapWire(c net.Conn) net.Conn { return &wireConn{Conn: c} }

// wireConnOf finds the wireConn beneath c, if any.
func wireConnOf(c net.Conn) *wireConn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	wc, _ := c.(*wireConn)
	return wc
}

// arm makes the next write wait for a token from lim: HTTP/1.1 writes a
// request whole before it reads the answer, so the next write after the
// transport hands the connection to a request is that request's first.
func (c *wireConn) arm(ctx context.Context, lim Limiter, taken func()) {
	c.mu.Lock()
	c.armed = &armedRequest{ctx: ctx, lim: lim, taken: taken}
	c.mu.Unlock()
}

// Write writes b, first taking the armed request's token: the in-process
// limit makes the write itself (wireLimiter), so its window counts the
// write's own time; a shared limit's token is taken just before. An error
// from the wait is the request's context ending; nothing is written then.
func (c *wireConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	a := c.armed
	c.armed = nil
	c.mu.Unlock()
	if a == nil {
		return c.Conn.Write(b)
	}
	wrote := false
	write := func() (int, error) {
		wrote = true
		return c.Conn.Write(b)
	}
	var n int
	var err error
	if wl, ok := a.lim.(wireLimiter); ok {
		n, err = wl.send(a.ctx, write)
	} else if err = a.lim.Wait(a.ctx); err == nil {
		n, err = write()
	}
	if wrote {
		a.taken()
	}
	return n, err
}
