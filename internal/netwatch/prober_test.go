package netwatch

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestProbe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := NewProber(ProberOptions{Timeout: time.Second})
	if _, ok := p.Last(); ok {
		t.Error("Last() before any probe")
	}

	ok, rtt, err := p.Probe(t.Context(), ln.Addr().String())
	if !ok || err != nil || rtt <= 0 {
		t.Fatalf("Probe(listener) = %v, %v, %v; want ok with an rtt", ok, rtt, err)
	}
	if r, has := p.Last(); !has || !r.OK || r.Addr != ln.Addr().String() || r.RTT != rtt || r.Err != "" {
		t.Errorf("Last() = %+v, %v", r, has)
	}

	closed := closedAddr(t)
	ok, _, err = p.Probe(t.Context(), closed)
	if ok || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Probe(closed port) = %v, %v; want connection refused", ok, err)
	}
	if r, _ := p.Last(); r.OK || r.Addr != closed || r.Err != err.Error() {
		t.Errorf("Last() = %+v after a refusal", r)
	}
}

// TestProbeSendsNothing: the server sees a connection that carries no byte
// and ends in a reset, not a FIN (so no FIN exchange and no TIME_WAIT).
func TestProbeSendsNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		n   int64
		err error
	}
	got := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- result{err: err}
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := io.Copy(io.Discard, c)
		got <- result{n, err}
	}()
	if ok, _, err := NewProber(ProberOptions{}).Probe(t.Context(), ln.Addr().String()); !ok {
		t.Fatal(err)
	}
	r := <-got
	if r.n != 0 {
		t.Errorf("server read %d bytes, want 0", r.n)
	}
	if !errors.Is(r.err, syscall.ECONNRESET) {
		t.Errorf("server read ended with %v, want a reset (abortive close)", r.err)
	}
}

// TestProberRun: probes happen only while active, at the interval, and
// OnReachable fires once when a probe succeeds after failures.
func TestProberRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Listeners without Accept: the kernel completes the handshake,
		// and no goroutine sits in the poller outside the bubble's clock.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // down at first

		var (
			mu        sync.Mutex
			reachable []ProbeResult
			active    atomic.Bool
		)
		logs := &logRecorder{}
		p := NewProber(ProberOptions{
			Logger:      slog.New(logs),
			Interval:    time.Minute,
			Timeout:     time.Second,
			Rand:        rand.New(rand.NewPCG(3, 4)),
			OnReachable: func(r ProbeResult) { mu.Lock(); reachable = append(reachable, r); mu.Unlock() },
		})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx, addr, active.Load) }()
		calls := func() int { mu.Lock(); defer mu.Unlock(); return len(reachable) }
		const tick = time.Minute + time.Minute/4 // the longest wait

		time.Sleep(3 * tick)
		synctest.Wait()
		if r, ok := p.Last(); ok {
			t.Fatalf("probed while inactive: %+v", r)
		}

		active.Store(true)
		time.Sleep(2 * tick)
		synctest.Wait()
		if r, ok := p.Last(); !ok || r.OK {
			t.Fatalf("Last() = %+v, %v; want a failed probe", r, ok)
		}

		ln, err = net.Listen("tcp", addr) // the endpoint returns
		if err != nil {
			t.Fatalf("listen again on %s: %v", addr, err)
		}
		defer ln.Close()
		time.Sleep(tick)
		synctest.Wait()
		if n := calls(); n != 1 {
			t.Fatalf("OnReachable called %d times after the return, want 1", n)
		}
		if r := reachable[0]; !r.OK || r.Addr != addr {
			t.Errorf("OnReachable(%+v)", r)
		}
		time.Sleep(2 * tick)
		synctest.Wait()
		if n := calls(); n != 1 {
			t.Errorf("OnReachable called %d times, want 1: successes after a success are not news", n)
		}

		active.Store(false)
		synctest.Wait()
		before, _ := p.Last()
		time.Sleep(3 * tick)
		synctest.Wait()
		if after, _ := p.Last(); !after.At.Equal(before.At) {
			t.Errorf("probed at %v after going inactive", after.At)
		}
		if n := logs.count("INFO endpoint unreachable"); n != 1 {
			t.Errorf("unreachable logged %d times, want once for the run of failures", n)
		}
		if n := logs.count("INFO endpoint reachable again"); n != 1 {
			t.Errorf("recovery logged %d times, want once", n)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
}

func TestProberRunBadAddr(t *testing.T) {
	if err := NewProber(ProberOptions{}).Run(t.Context(), "no-port", func() bool { return true }); err == nil {
		t.Error("Run accepted an address without a port")
	}
}

func TestProberIntervalCapped(t *testing.T) {
	p := NewProber(ProberOptions{Interval: time.Second})
	for range 100 {
		if w := p.wait(); w < MinProbeInterval || w > MinProbeInterval+MinProbeInterval/4 {
			t.Fatalf("wait %v outside [%v, %v]", w, MinProbeInterval, MinProbeInterval*5/4)
		}
	}
}
