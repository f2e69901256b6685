package gateway

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"taxi-agent/internal/punch"
	"taxi-agent/internal/punchsim"
	"taxi-agent/internal/uploader"
)

// gateLimiter hands out a token each time one is put in tokens.
type gateLimiter struct{ tokens chan struct{} }

func (g gateLimiter) Wait(ctx context.Context) error {
	select {
	case <-g.tokens:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestWireConnTakesTokenAtWrite: an armed request's write waits for its
// token and nothing reaches the peer before; writes that are not an armed
// request's (a TLS handshake's) pass without one; a request whose context
// ends while it waits writes nothing.
func TestWireConnTakesTokenAtWrite(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	wc := wireConnOf(wrapWire(raw))
	defer wc.Close()
	received := make(chan string, 8)
	go func() {
		buf := make([]byte, 64)
		for {
			n, err := peer.Read(buf)
			if err != nil {
				close(received)
				return
			}
			received <- string(buf[:n])
		}
	}()
	expect := func(want string) {
		t.Helper()
		select {
		case got := <-received:
			if got != want {
				t.Fatalf("peer read %q, want %q", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("peer read nothing, want %q", want)
		}
	}
	expectNothing := func() {
		t.Helper()
		select {
		case got := <-received:
			t.Fatalf("peer read %q before the token", got)
		case <-time.After(100 * time.Millisecond):
		}
	}

	lim := gateLimiter{tokens: make(chan struct{})}
	if _, err := wc.Write([]byte("hello")); err != nil { // not armed: a handshake
		t.Fatal(err)
	}
	expect("hello")

	taken := make(chan struct{}, 1)
	wc.arm(context.Background(), lim, func() { taken <- struct{}{} })
	wrote := make(chan error, 1)
	go func() { _, err := wc.Write([]byte("punch 1")); wrote <- err }()
	expectNothing()
	lim.tokens <- struct{}{}
	expect("punch 1")
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	<-taken
	if _, err := wc.Write([]byte("rest of 1")); err != nil { // the same request: no second token
		t.Fatal(err)
	}
	expect("rest of 1")

	ctx, cancel := context.WithCancel(context.Background())
	wc.arm(ctx, lim, func() { t.Error("taken without a token") })
	go func() { _, err := wc.Write([]byte("punch 2")); wrote <- err }()
	expectNothing()
	cancel()
	if err := <-wrote; err == nil {
		t.Fatal("a write whose request ended wrote anyway")
	}
	expectNothing()
	wc.Close()
	if _, ok := <-received; ok {
		t.Fatal("peer read more after the ended request")
	}
}

// writeCounter counts the writes of each armed request: from the write
// after a token to the first read of the answer.
type writeCounter struct {
	net.Conn
	mu       *sync.Mutex
	armedNow *bool
	inReq    bool
	counts   *[]int
}

func (w *writeCounter) Write(b []byte) (int, error) {
	w.mu.Lock()
	switch {
	case *w.armedNow:
		*w.armedNow, w.inReq = false, true
		*w.counts = append(*w.counts, 1)
	case w.inReq:
		(*w.counts)[len(*w.counts)-1]++
	}
	w.mu.Unlock()
	return w.Conn.Write(b)
}

func (w *writeCounter) Read(b []byte) (int, error) {
	n, err := w.Conn.Read(b)
	if n > 0 {
		w.mu.Lock()
		w.inReq = false
		w.mu.Unlock()
	}
	return n, err
}

// markLimiter hands out tokens at once and marks that the next write is
// the armed request's.
type markLimiter struct {
	mu       *sync.Mutex
	armedNow *bool
}

func (m markLimiter) Wait(context.Context) error {
	m.mu.Lock()
	*m.armedNow = true
	m.mu.Unlock()
	return nil
}

// TestPunchLeavesInOneWrite: through the gateway's own client (the
// uploader's, with wrapWire), each punch request reaches the connection in
// one write, the one that took the token. The window's bound on what
// reaches the kernel (limiter.go) rests on it: bytes of a request written
// later, unwindowed, could bunch up.
func TestPunchLeavesInOneWrite(t *testing.T) {
	keys, err := punchsim.GenerateKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sim, err := punchsim.New(keys, punchsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	auth, err := uploader.NewDirectAuth(uploader.DirectAuthConfig{
		MchID: keys.MchID, MerchantSerialNo: keys.MerchantSerialNo, PrivateKeyFile: keys.PrivateKeyFile,
		PublicKeyID: keys.PublicKeyID, PublicKeyFile: keys.PublicKeyFile,
	})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var armedNow bool
	var counts []int
	client, err := uploader.NewClient(uploader.Config{
		BaseURL: sim.URL(), CAFile: keys.CAFile, UserAgent: "wire-test", AttemptTimeout: 10 * time.Second,
		TransportRetries: -1, MaxIdleConns: maxIdleToWeChat,
		WrapConn: func(c net.Conn) net.Conn {
			return wrapWire(&writeCounter{Conn: c, mu: &mu, armedNow: &armedNow, counts: &counts})
		},
	}, auth)
	if err != nil {
		t.Fatal(err)
	}
	lim := markLimiter{mu: &mu, armedNow: &armedNow}
	for i := range 3 {
		ev := punch.Event{Type: punch.SignIn, DriverLicense: fmt.Sprintf("4210831988090%05d", i), PlateNumber: "粤B12345",
			RegionID: 440300, EventTime: fmt.Sprintf("2026-11-28T10:%02d:00.123+08:00", i)}
		taken := false
		ctx := wireGate(context.Background(), lim, func() { taken = true })
		if _, derr := client.Exchange(ctx, ev); derr != nil {
			t.Fatalf("punch %d: %v", i, derr)
		}
		if !taken {
			t.Fatalf("punch %d delivered without its token", i)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(counts) != 3 || slices.ContainsFunc(counts, func(n int) bool { return n != 1 }) {
		t.Fatalf("writes per punch request %v, want [1 1 1]", counts)
	}
}
