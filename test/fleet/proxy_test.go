package fleet

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	"taxi-agent/internal/testsupport"
)

// tlsProxy stands in front of punchsim as the TLS server the uploader
// talks to: it terminates TLS with the fake's own certificate, notes for
// every handshake whether it resumed a session, and relays the plaintext
// to punchsim over a TLS connection of its own. CloseAll drops every client
// connection, as a server does with idle ones.
type tlsProxy struct {
	ln       net.Listener
	upstream string
	cfg      *tls.Config // server side
	upCfg    *tls.Config // to punchsim

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	resumed []bool // per handshake, in order
	wg      sync.WaitGroup
}

func newTLSProxy(t testing.TB, upstream string) *tlsProxy {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(testKeys.TLSCertFile, testKeys.TLSKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := testsupport.CertPool(t, testKeys.CAFile)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tlsProxy{
		ln:       ln,
		upstream: upstream,
		cfg:      &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}},
		upCfg:    &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"}},
		conns:    map[net.Conn]struct{}{},
	}
	p.wg.Go(p.serve)
	t.Cleanup(func() {
		ln.Close()
		p.CloseAll()
		p.wg.Wait()
	})
	return p
}

// URL is the base URL to give the uploader.
func (p *tlsProxy) URL() string { return "https://" + p.ln.Addr().String() }

func (p *tlsProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		p.wg.Go(func() { p.relay(c) })
	}
}

func (p *tlsProxy) relay(c net.Conn) {
	defer func() {
		c.Close()
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
	}()
	tc := tls.Server(c, p.cfg)
	if err := tc.Handshake(); err != nil {
		return
	}
	p.mu.Lock()
	p.resumed = append(p.resumed, tc.ConnectionState().DidResume)
	p.mu.Unlock()
	up, err := tls.Dial("tcp", p.upstream, p.upCfg)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(up, tc)
		_ = up.CloseWrite()
		close(done)
	}()
	if _, err := io.Copy(tc, up); err != nil && !errors.Is(err, net.ErrClosed) {
		_ = err // the client went away
	}
	c.Close()
	<-done
}

// CloseAll drops every client connection.
func (p *tlsProxy) CloseAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// Handshakes reports, per TLS handshake so far, whether it resumed.
func (p *tlsProxy) Handshakes() []bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]bool(nil), p.resumed...)
}
