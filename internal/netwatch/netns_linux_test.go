package netwatch

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"taxi-agent/internal/backoff"
)

// testNetns is a network namespace made for one test, removed in Cleanup.
type testNetns struct {
	name string
	file *os.File // /run/netns/<name>, for unix.Setns
}

// newNetns creates a namespace, or skips the test when creating one is
// refused (not root, no CAP_SYS_ADMIN, no iproute2).
func newNetns(t testing.TB, role string) testNetns {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipping: ip (iproute2) is not installed, cannot create a network namespace")
	}
	name := fmt.Sprintf("netwatch-%s-%d-%d", role, os.Getpid(), rand.Uint32())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("skipping: network namespace creation refused (ip netns add: %v: %s)", err, bytesTrim(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, bytesTrim(out))
		}
	})
	f, err := os.Open("/run/netns/" + name)
	if err != nil {
		t.Fatalf("open namespace: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return testNetns{name: name, file: f}
}

// ip runs `ip -n <ns> args...` and fails the test if it fails.
func (n testNetns) ip(t testing.TB, args ...string) {
	t.Helper()
	if err := n.run(args...); err != nil {
		t.Fatal(err)
	}
}

// run runs `ip -n <ns> args...`; safe off the test goroutine.
func (n testNetns) run(args ...string) error {
	args = append([]string{"-n", n.name}, args...)
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytesTrim(out))
	}
	return nil
}

// goIn runs fn on a new goroutine whose OS thread is moved into the
// namespace. The thread stays locked, so it is discarded when fn returns and
// no other goroutine ever runs in the namespace.
func (n testNetns) goIn(t testing.TB, fn func() error) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Setns(int(n.file.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("setns %s: %w", n.name, err)
			return
		}
		done <- fn()
	}()
	return done
}

// vethPair makes the watched namespace with link vA, whose peer vB (up)
// lives in a second namespace, so only vA's events are seen.
func vethPair(t testing.TB) testNetns {
	t.Helper()
	watched, peer := newNetns(t, "w"), newNetns(t, "p")
	watched.ip(t, "link", "add", "vA", "type", "veth", "peer", "name", "vB", "netns", peer.name)
	peer.ip(t, "link", "set", "vB", "up")
	return watched
}

func bytesTrim(b []byte) string { return strings.TrimSpace(string(b)) }

type upCall struct {
	c  Change
	at time.Time
}

// TestNetnsWakeOnLinkUp is issue 9's first item: in a namespace the test
// creates, the link goes down, then comes up and gets an address and a
// default route; OnUp fires within 2 s of each, with the right Kind.
func TestNetnsWakeOnLinkUp(t *testing.T) {
	ns := vethPair(t) // vA starts down

	const jitter = 100 * time.Millisecond
	seed := func() *rand.Rand { return rand.New(rand.NewPCG(9, 9)) }
	draws := seed() // the same draws the watcher will make
	changes := make(chan Change, 32)
	ups := make(chan upCall, 8)
	w := New(Options{
		Logger:   testLogger(t),
		OnChange: func(c Change) { changes <- c },
		OnUp:     func(c Change) { ups <- upCall{c, time.Now()} },
		Jitter:   jitter,
		Rand:     seed(),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := ns.goIn(t, func() error { return w.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-w.ready:
	case err := <-done:
		t.Fatalf("Run ended early: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("watcher not ready after 5s")
	}
	if err := w.Err(); err != nil {
		t.Fatalf("watcher fell back: %v", err)
	}

	// A first up and down, so the wake below is a return, not a start.
	for _, s := range []struct{ state, kind string }{{"up", KindLinkUp}, {"down", KindLinkDown}} {
		ns.ip(t, "link", "set", "vA", s.state)
		expectChange(t, changes, s.kind, "vA")
	}
	if u := <-ups; u.c.Kind != KindLinkUp {
		t.Fatalf("first OnUp(%+v), want link-up", u.c)
	}
	draws.Float64()

	steps := []struct {
		args []string
		kind string
	}{
		{[]string{"link", "set", "vA", "up"}, KindLinkUp},
		{[]string{"addr", "add", "10.200.0.2/24", "dev", "vA"}, KindAddrAdded},
		{[]string{"route", "add", "default", "via", "10.200.0.1", "dev", "vA"}, KindDefaultRouteAdded},
	}
	for _, s := range steps {
		start := time.Now()
		ns.ip(t, s.args...)
		var u upCall
		select {
		case u = <-ups:
		case <-time.After(2 * time.Second):
			t.Fatalf("ip %s: no OnUp within 2s", strings.Join(s.args, " "))
		}
		want := Change{Kind: s.kind, Interface: "vA", Up: true}
		if got := (Change{Kind: u.c.Kind, Interface: u.c.Interface, Up: u.c.Up}); got != want {
			t.Fatalf("ip %s: OnUp(%+v), want %+v", strings.Join(s.args, " "), got, want)
		}
		if u.c.At.Before(start) {
			t.Errorf("change stamped %v, before the step began at %v", u.c.At, start)
		}
		if d, min := u.at.Sub(u.c.At), (backoff.Policy{Min: jitter, Max: jitter}).Delay(1, draws.Float64()); d < min {
			t.Errorf("OnUp %v after the change, want at least the jitter %v", d, min)
		}
		expectChange(t, changes, s.kind, "vA")
	}

	ns.ip(t, "route", "del", "default")
	expectChange(t, changes, KindDefaultRouteRemoved, "vA")
	ns.ip(t, "link", "set", "vA", "down")
	expectChange(t, changes, KindLinkDown, "vA")
	if last, ok := w.Last(); !ok || last.Kind != KindLinkDown || last.Interface != "vA" {
		t.Errorf("Last() = %+v, %v; want link-down on vA", last, ok)
	}
	select {
	case u := <-ups:
		t.Errorf("OnUp(%+v) on the way down", u.c)
	default:
	}
}

// expectChange requires the next change to be kind on iface.
func expectChange(t *testing.T, changes <-chan Change, kind, iface string) {
	t.Helper()
	select {
	case c := <-changes:
		if c.Kind != kind || c.Interface != iface {
			t.Fatalf("next change %s on %s, want %s on %s", c.Kind, c.Interface, kind, iface)
		}
	case <-time.After(2 * time.Second):
		t.Fatalf("no %s change on %s within 2s", kind, iface)
	}
}
