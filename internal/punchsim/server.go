package punchsim

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"taxi-agent/internal/rxstamp"
)

// Path is the punch endpoint's path.
const Path = "/v3/taxi-invoice/attendance/punch"

// Options tune a Server. The zero value serves on a free loopback port with
// the real clock and no faults.
type Options struct {
	// Addr is the loopback address to listen on, e.g. "127.0.0.1:8443";
	// empty picks a free port on 127.0.0.1.
	Addr string
	// Now is the fake's clock for the 5-minute window and for the timestamps
	// it signs; nil means time.Now.
	Now func() time.Time
	// Faults decides what to do with a valid request that no injected fault
	// claimed; nil means answer normally. It sees the exchange so far (Seq,
	// Punch, Nonce…) and may be called from several goroutines at once.
	Faults func(x Exchange) Fault
	// OnExchange is called after each request has been answered (or
	// abandoned), in the handler's goroutine; use it to print what happened.
	OnExchange func(x Exchange)
}

// Exchange is the record of one request and what the fake did with it.
type Exchange struct {
	Seq          int       `json:"seq"` // 1-based, in arrival order
	At           time.Time `json:"at"`  // when the handler took the request up, on Options.Now
	RequestID    string    `json:"request_id"`
	Path         string    `json:"path,omitempty"` // set for other APIs than the punch (CertificatesPath)
	MchID        string    `json:"mchid,omitempty"`
	Nonce        string    `json:"nonce,omitempty"`
	Timestamp    int64     `json:"timestamp,omitempty"`
	AcceptSerial string    `json:"accept_serial,omitempty"` // the request's Wechatpay-Serial
	Punch        *Punch    `json:"punch,omitempty"`         // set when the body was valid
	Rejection    string    `json:"rejection,omitempty"`     // one of the Reject… reasons, "" if the request was valid
	Detail       string    `json:"detail,omitempty"`        // why, in words
	Fault        FaultKind `json:"fault,omitempty"`         // the fault applied to a valid request
	Status       int       `json:"status"`                  // HTTP status answered; 0 for a reset or an abandoned stall
	Accepted     bool      `json:"accepted"`                // the punch was accepted and answered with a signed 204
	// Received is when the request's last byte reached this host's kernel
	// (the Linux receive timestamp, wall clock; see package rxstamp): its
	// arrival from the network, whatever the fake's goroutines were doing
	// meanwhile. Zero for a request whose body was not read, or off Linux.
	Received time.Time `json:"received,omitzero"`
}

// Stats counts what the fake has seen since it was made.
type Stats struct {
	Requests    int               `json:"requests"`
	Accepted    int               `json:"accepted"`
	Connections int               `json:"connections"` // TCP connections accepted
	Rejected    map[string]int    `json:"rejected"`    // by Reject… reason
	Faults      map[FaultKind]int `json:"faults"`      // by fault applied
}

// Server is the fake punch endpoint. Its methods are safe for concurrent use.
type Server struct {
	keys      Keys
	opts      Options
	merchant  *rsa.PublicKey
	pubSigner *rsa.PrivateKey
	apiv3Key  []byte
	tlsConfig *tls.Config

	mu        sync.Mutex
	addr      string
	srv       *http.Server
	ln        net.Listener  // srv's; Stop closes it itself (see Stop)
	quit      chan struct{} // closed when the current serving generation stops
	closed    bool
	seq       int
	queue     []Fault
	faults    func(Exchange) Fault
	nonces    map[string]int64
	exchanges []Exchange
	accepted  []Punch
	stats     Stats
	changed   chan struct{}  // closed and replaced after every exchange
	platforms []PlatformCert // served on GET /v3/certificates
	current   int            // index in platforms of the certificate that signs
	signer    AnswerSigner
	skew      time.Duration // the fake's clock minus Options.Now
	certsDown bool          // GET /v3/certificates resets the connection
}

// New loads keys and starts serving HTTPS on opts.Addr.
func New(keys Keys, opts Options) (*Server, error) {
	s := &Server{
		keys:    keys,
		opts:    opts,
		faults:  opts.Faults,
		nonces:  map[string]int64{},
		changed: make(chan struct{}),
		stats:   Stats{Rejected: map[string]int{}, Faults: map[FaultKind]int{}},
	}
	if s.opts.Now == nil {
		s.opts.Now = time.Now
	}
	var err error
	if s.merchant, err = loadPublicKey(keys.MerchantPublicKeyFile); err != nil {
		return nil, fmt.Errorf("load merchant public key: %w", err)
	}
	if s.pubSigner, err = loadPrivateKey(keys.PublicKeySignerFile); err != nil {
		return nil, fmt.Errorf("load public key signer: %w", err)
	}
	platKey, err := loadPrivateKey(keys.PlatformKeyFile)
	if err != nil {
		return nil, fmt.Errorf("load platform key: %w", err)
	}
	platDER, err := readPEM(keys.PlatformCertFile, "CERTIFICATE")
	if err != nil {
		return nil, fmt.Errorf("load platform certificate: %w", err)
	}
	platCert, err := x509.ParseCertificate(platDER)
	if err != nil {
		return nil, fmt.Errorf("load platform certificate: %w", err)
	}
	s.platforms = []PlatformCert{{
		Serial: keys.PlatformSerialNo, Cert: platCert, key: platKey,
		PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: platDER}),
	}}
	if keys.APIv3KeyFile != "" {
		k, err := os.ReadFile(keys.APIv3KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load apiv3 key: %w", err)
		}
		s.apiv3Key = bytes.TrimSpace(k)
	}
	cert, err := tls.LoadX509KeyPair(keys.TLSCertFile, keys.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("load tls certificate: %w", err)
	}
	s.tlsConfig = &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
	}
	s.addr = opts.Addr
	if s.addr == "" {
		s.addr = "127.0.0.1:0"
	}
	if err := checkLoopback(s.addr); err != nil {
		return nil, err
	}
	if err := s.Start(); err != nil {
		return nil, err
	}
	return s, nil
}

func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("parse listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("listen on %s: %w", addr, ErrNotLoopback)
	}
	return nil
}

// URL is the base URL to configure as wechatpay.base_url, e.g.
// https://127.0.0.1:41234. It stays the same across Stop and Start.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "https://" + s.addr
}

// Keys returns the keys the server was made with.
func (s *Server) Keys() Keys { return s.keys }

// Start serves again on the same address after Stop: the end of an outage.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.srv != nil {
		return ErrRunning
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	stamped := rxstamp.Listen(ln) // without receive times where the kernel gives none
	s.addr = ln.Addr().String()
	s.quit = make(chan struct{})
	srv := &http.Server{
		Handler:           http.HandlerFunc(s.handle),
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){}, // HTTP/1.1 only, so Reset can hijack
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          log.New(discard{}, "", 0),
		ConnContext:       func(ctx context.Context, c net.Conn) context.Context { return context.WithValue(ctx, connKey{}, c) },
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				s.mu.Lock()
				s.stats.Connections++
				s.mu.Unlock()
			}
		},
	}
	s.srv, s.ln = srv, ln
	go func() { _ = srv.Serve(tls.NewListener(stamped, s.tlsConfig)) }()
	return nil
}

// Stop takes the server offline: the listener is closed, so new
// connections are refused, and every open connection is closed. Start
// brings it back on the same address.
func (s *Server) Stop() error {
	s.mu.Lock()
	srv, ln, quit := s.srv, s.ln, s.quit
	s.srv, s.ln = nil, nil
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	close(quit)
	if err := srv.Close(); err != nil {
		return fmt.Errorf("stop server: %w", err)
	}
	// srv.Close closes only the listeners Serve has taken on; right after
	// Start, Serve may not have yet, and would close the listener later,
	// resetting the connections that reached it meanwhile instead of
	// refusing them. So close it here too; if srv.Close did, this only
	// errors.
	_ = ln.Close()
	return nil
}

// Close stops the server for good.
func (s *Server) Close() error {
	err := s.Stop()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return err
}

// Inject queues faults for the next valid requests, one each, in order,
// before Options.Faults is consulted.
func (s *Server) Inject(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, faults...)
}

// SetFaults replaces the per-request fault function (Options.Faults).
func (s *Server) SetFaults(f func(Exchange) Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// Pending returns how many injected faults have not been used yet.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// Exchanges returns every exchange so far, in arrival order.
func (s *Server) Exchanges() []Exchange {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.exchanges)
}

// Accepted returns the accepted punches, in the order they were accepted.
func (s *Server) Accepted() []Punch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.accepted)
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Rejected = maps.Clone(s.stats.Rejected)
	st.Faults = maps.Clone(s.stats.Faults)
	return st
}

// WaitExchanges blocks until at least n requests have been handled or ctx
// is done.
func (s *Server) WaitExchanges(ctx context.Context, n int) error {
	return s.wait(ctx, func() bool { return len(s.exchanges) >= n })
}

// WaitAccepted blocks until at least n punches have been accepted or ctx
// is done.
func (s *Server) WaitAccepted(ctx context.Context, n int) error {
	return s.wait(ctx, func() bool { return len(s.accepted) >= n })
}

func (s *Server) wait(ctx context.Context, done func() bool) error {
	for {
		s.mu.Lock()
		ok, ch := done(), s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for punchsim: %w", ctx.Err())
		case <-ch:
		}
	}
}

// nextFault takes the next injected fault, or asks the fault function.
func (s *Server) nextFault(x Exchange) Fault {
	s.mu.Lock()
	if len(s.queue) > 0 {
		f := s.queue[0]
		s.queue = s.queue[1:]
		s.mu.Unlock()
		return f
	}
	fn := s.faults
	s.mu.Unlock()
	if fn == nil {
		return Fault{}
	}
	return fn(x)
}

// record stores a finished exchange and tells waiters and the hook.
func (s *Server) record(x Exchange) {
	s.mu.Lock()
	s.exchanges = append(s.exchanges, x)
	s.stats.Requests++
	if x.Rejection != "" {
		s.stats.Rejected[x.Rejection]++
	}
	if x.Fault != None {
		s.stats.Faults[x.Fault]++
	}
	if x.Accepted {
		s.stats.Accepted++
		s.accepted = append(s.accepted, *x.Punch)
	}
	close(s.changed)
	s.changed = make(chan struct{})
	hook := s.opts.OnExchange
	s.mu.Unlock()
	if hook != nil {
		hook(x)
	}
}

// useNonce remembers a nonce and reports whether it was new. Nonces older
// than twice the window are forgotten: their timestamps fail the window
// check anyway.
func (s *Server) useNonce(n string, ts int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, seen := s.nonces[n]; seen {
		return false
	}
	s.nonces[n] = ts
	if len(s.nonces)%4096 == 0 {
		horizon := s.opts.Now().Add(s.skew - 2*window).Unix()
		maps.DeleteFunc(s.nonces, func(_ string, t int64) bool { return t < horizon })
	}
	return true
}

func (s *Server) quitChan() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.quit
}

// connKey holds a request's connection in its context, for its kernel
// receive time.
type connKey struct{}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
