package netwatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"taxi-agent/internal/backoff"
)

// record collects what a Watcher reports.
type record struct {
	mu      sync.Mutex
	changes []Change
	ups     []Change
	upAt    []time.Time
}

func (r *record) opts(o Options) Options {
	o.OnChange = func(c Change) { r.mu.Lock(); r.changes = append(r.changes, c); r.mu.Unlock() }
	o.OnUp = func(c Change) {
		r.mu.Lock()
		r.ups = append(r.ups, c)
		r.upAt = append(r.upAt, time.Now())
		r.mu.Unlock()
	}
	return o
}

func (r *record) kinds() (changes, ups []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.changes {
		changes = append(changes, c.Kind+" "+c.Interface)
	}
	for _, c := range r.ups {
		ups = append(ups, c.Kind+" "+c.Interface)
	}
	return changes, ups
}

// start runs w over fc until the test's bubble ends, and waits for the
// initial sync.
func start(t *testing.T, w *Watcher, fc *fakeConn) {
	t.Helper()
	w.dial = func() (conn, error) { return fc, nil }
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	synctest.Wait()
	select {
	case <-w.ready:
	default:
		t.Fatal("initial sync not done")
	}
}

func TestWatcherJitterAndFold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const jitter = 500 * time.Millisecond
		draws := rand.New(rand.NewPCG(1, 2))
		var r record
		w := New(r.opts(Options{Logger: testLogger(t), Jitter: jitter, Rand: rand.New(rand.NewPCG(1, 2))}))
		fc := newFakeConn()
		fc.setDump(unix.RTM_GETLINK, link(2, "wwan0", unix.IFF_UP)) // no carrier yet
		start(t, w, fc)

		t0 := time.Now()
		fc.notify(link(2, "wwan0", upRunning))
		synctest.Wait()
		d := backoff.Policy{Min: jitter, Max: jitter}.Delay(1, draws.Float64())
		if _, ups := r.kinds(); len(ups) != 0 && d > 0 {
			t.Fatalf("OnUp before the jitter: %v", ups)
		}
		time.Sleep(d / 2)
		// An address during the wait is folded into the pending call.
		fc.notify(addr(unix.RTM_NEWADDR, 2, []byte{10, 64, 0, 9}, unix.RT_SCOPE_UNIVERSE, 0))
		time.Sleep(d - d/2 - 1)
		synctest.Wait()
		if _, ups := r.kinds(); len(ups) != 0 {
			t.Fatalf("OnUp 1ns before the jitter %v: %v", d, ups)
		}
		time.Sleep(1)
		synctest.Wait()
		changes, ups := r.kinds()
		if want := []string{"link-up wwan0"}; !slices.Equal(ups, want) {
			t.Fatalf("OnUp calls %v, want %v", ups, want)
		}
		if got := r.upAt[0].Sub(t0); got != d {
			t.Errorf("OnUp after %v, want the drawn jitter %v", got, d)
		}
		if want := []string{"link-up wwan0", "addr-added wwan0"}; !slices.Equal(changes, want) {
			t.Errorf("changes %v, want %v", changes, want)
		}

		// The next up change after the call gets its own call.
		fc.notify(defRoute(unix.RTM_NEWROUTE, 2, []byte{10, 64, 0, 1}))
		time.Sleep(jitter)
		synctest.Wait()
		_, ups = r.kinds()
		if want := []string{"link-up wwan0", "default-route-added wwan0"}; !slices.Equal(ups, want) {
			t.Errorf("OnUp calls %v, want %v", ups, want)
		}
		last, ok := w.Last()
		if !ok || last.Kind != KindDefaultRouteAdded || !last.Up || !last.At.Equal(t0.Add(d/2+d-d/2)) {
			t.Errorf("Last() = %+v, %v", last, ok)
		}
	})
}

func TestWatcherNoJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r record
		w := New(r.opts(Options{Jitter: -1}))
		fc := newFakeConn()
		start(t, w, fc)
		fc.notify(link(3, "eth0", upRunning))
		synctest.Wait()
		if _, ups := r.kinds(); !slices.Equal(ups, []string{"link-up eth0"}) {
			t.Errorf("OnUp calls %v, want one at once", ups)
		}
	})
}

func TestWatcherBaselineIsSilent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r record
		w := New(r.opts(Options{Jitter: -1}))
		fc := newFakeConn()
		fc.setDump(unix.RTM_GETLINK, link(1, "lo", upRunning|unix.IFF_LOOPBACK), link(2, "wwan0", upRunning))
		fc.setDump(unix.RTM_GETADDR, addr(unix.RTM_NEWADDR, 2, []byte{10, 64, 0, 9}, unix.RT_SCOPE_UNIVERSE, 0))
		fc.setDump(unix.RTM_GETROUTE, defRoute(unix.RTM_NEWROUTE, 2, []byte{10, 64, 0, 1}))
		start(t, w, fc)
		// The kernel repeats the state: still no change.
		fc.notify(link(2, "wwan0", upRunning), defRoute(unix.RTM_NEWROUTE, 2, []byte{10, 64, 0, 1}))
		synctest.Wait()
		if changes, ups := r.kinds(); changes != nil || ups != nil {
			t.Errorf("changes %v, OnUp %v; want none", changes, ups)
		}
		if c, ok := w.Last(); ok {
			t.Errorf("Last() = %+v, want none", c)
		}
		if got, want := fc.requests(), []uint16{unix.RTM_GETLINK, unix.RTM_GETADDR, unix.RTM_GETROUTE}; !slices.Equal(got, want) {
			t.Errorf("dump requests %v, want %v", got, want)
		}
	})
}

func TestWatcherResyncAfterLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r record
		logs := &logRecorder{}
		w := New(r.opts(Options{Jitter: -1, Logger: slog.New(logs)}))
		fc := newFakeConn()
		fc.setDump(unix.RTM_GETLINK, link(2, "wwan0", upRunning))
		fc.setDump(unix.RTM_GETROUTE, defRoute(unix.RTM_NEWROUTE, 2, []byte{10, 64, 0, 1}))
		start(t, w, fc)

		// While notifications were dropped the route went and an address came.
		fc.setDump(unix.RTM_GETROUTE)
		fc.setDump(unix.RTM_GETADDR, addr(unix.RTM_NEWADDR, 2, []byte{10, 64, 0, 9}, unix.RT_SCOPE_UNIVERSE, 0))
		lost := fmt.Errorf("receive netlink: %w: %w", errLost, syscall.ENOBUFS)
		fc.in <- datagram{err: lost}
		fc.in <- datagram{err: lost} // again: one more resync
		synctest.Wait()

		changes, ups := r.kinds()
		if want := []string{"addr-added wwan0", "default-route-removed wwan0"}; !slices.Equal(changes, want) {
			t.Errorf("changes %v, want %v", changes, want)
		}
		if want := []string{"addr-added wwan0"}; !slices.Equal(ups, want) {
			t.Errorf("OnUp %v, want %v", ups, want)
		}
		if n := len(fc.requests()); n != 9 {
			t.Errorf("%d dump requests, want 9: the first sync and two resyncs", n)
		}
		if n := logs.count("WARN netlink notifications lost, resynchronising"); n != 1 {
			t.Errorf("loss logged %d times, want once", n)
		}
		if err := w.Err(); err != nil {
			t.Errorf("Err() = %v after a loss, want nil", err)
		}
	})
}

func TestWatcherUndecodableLoggedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r record
		logs := &logRecorder{}
		w := New(r.opts(Options{Jitter: -1, Logger: slog.New(logs)}))
		fc := newFakeConn()
		start(t, w, fc)
		bad := netlink.Message{Header: netlink.Header{Type: unix.RTM_NEWADDR}, Data: []byte{2, 24}} // ifaddrmsg cut short
		for i := range 3 {
			fc.in <- datagram{msgs: []netlink.Message{bad, encode(link(int32(2+i), fmt.Sprint("wwan", i), upRunning))}}
		}
		synctest.Wait()
		if changes, _ := r.kinds(); !slices.Equal(changes, []string{"link-up wwan0", "link-up wwan1", "link-up wwan2"}) {
			t.Errorf("changes %v: the good messages beside the bad one must count", changes)
		}
		if n := logs.count("WARN undecodable netlink message skipped"); n != 1 {
			t.Errorf("undecodable message logged %d times, want once", n)
		}
	})
}

// TestWatcherFallback: when netlink cannot be opened, or fails later, Run
// logs once and returns nil only when ctx is done.
func TestWatcherFallback(t *testing.T) {
	for _, tt := range []struct {
		name  string
		cause error
		dial  func(fc *fakeConn) (conn, error)
	}{
		{"open refused", syscall.EPERM, func(*fakeConn) (conn, error) {
			return nil, fmt.Errorf("open netlink socket: %w", syscall.EPERM)
		}},
		{"dump refused", syscall.EPERM, func(fc *fakeConn) (conn, error) {
			fc.dumpErr = fmt.Errorf("dump links: %w", syscall.EPERM)
			fc.notify(link(2, "wwan0", upRunning)) // the reader is handing this over when the loop gives up
			return fc, nil
		}},
		{"socket fails later", syscall.EBADF, func(fc *fakeConn) (conn, error) {
			fc.in <- datagram{err: fmt.Errorf("receive netlink: %w", syscall.EBADF)}
			return fc, nil
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				logs := &logRecorder{}
				w := New(Options{Logger: slog.New(logs)})
				fc := newFakeConn()
				w.dial = func() (conn, error) { return tt.dial(fc) }
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan error, 1)
				go func() { done <- w.Run(ctx) }()
				time.Sleep(time.Hour)
				synctest.Wait()
				select {
				case err := <-done:
					t.Fatalf("Run returned %v before ctx was done", err)
				default:
				}
				if err := w.Err(); !errors.Is(err, ErrUnavailable) || !errors.Is(err, tt.cause) {
					t.Errorf("Err() = %v, want ErrUnavailable and %v", err, tt.cause)
				}
				if n := logs.count("WARN netlink unavailable, falling back to backoff alone"); n != 1 {
					t.Errorf("fallback logged %d times, want once", n)
				}
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run = %v, want nil", err)
				}
			})
		})
	}
}

func TestWatcherRunTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := New(Options{})
		start(t, w, newFakeConn())
		if err := w.Run(t.Context()); !errors.Is(err, ErrRunning) {
			t.Errorf("second Run = %v, want ErrRunning", err)
		}
	})
}
