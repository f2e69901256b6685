package netwatch

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"taxi-agent/internal/backoff"
	"taxi-agent/internal/testsupport"
)

type upCall struct {
	c  Change
	at time.Time
}

// TestNetnsWakeOnLinkUp is issue 9's first item: in a namespace the test
// creates, the link goes down, then comes up and gets an address and a
// default route; OnUp fires within 2 s of each, with the right Kind.
func TestNetnsWakeOnLinkUp(t *testing.T) {
	ns := testsupport.VethPair(t) // vA starts down

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
	done := ns.GoIn(func() error { return w.Run(ctx) })
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
		ns.IP(t, "link", "set", "vA", s.state)
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
		ns.IP(t, s.args...)
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

	ns.IP(t, "route", "del", "default")
	expectChange(t, changes, KindDefaultRouteRemoved, "vA")
	ns.IP(t, "link", "set", "vA", "down")
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
