package gateway

import (
	"context"
	"net"
	"testing"
	"time"
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
