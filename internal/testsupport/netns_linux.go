package testsupport

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Netns is a network namespace made for one test and deleted at its end.
type Netns struct {
	Name string
	file *os.File // /run/netns/<Name>, for setns(2)
}

// NewNetns creates a namespace named after role, the process and a random
// number, so that tests running at once never share one. It skips the test
// when creating one is refused (not root, no CAP_SYS_ADMIN, no iproute2).
func NewNetns(tb testing.TB, role string) *Netns {
	tb.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		tb.Skip("skipping: ip (iproute2) is not installed, cannot create a network namespace")
	}
	name := fmt.Sprintf("taxi-agent-%s-%d-%d", role, os.Getpid(), rand.Uint32())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		tb.Skipf("skipping: network namespace creation refused (ip netns add: %v: %s)", err, strings.TrimSpace(string(out)))
	}
	tb.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			tb.Errorf("ip netns del %s: %v: %s", name, err, strings.TrimSpace(string(out)))
		}
	})
	f, err := os.Open("/run/netns/" + name)
	if err != nil {
		tb.Fatalf("open namespace: %v", err)
	}
	tb.Cleanup(func() { f.Close() })
	return &Netns{Name: name, file: f}
}

// VethPair makes a namespace with link vA whose peer vB (up) lives in a
// second namespace, so that only vA's changes are seen in the first. It
// returns the first.
func VethPair(tb testing.TB) *Netns {
	tb.Helper()
	watched, peer := NewNetns(tb, "w"), NewNetns(tb, "p")
	watched.IP(tb, "link", "add", "vA", "type", "veth", "peer", "name", "vB", "netns", peer.Name)
	peer.IP(tb, "link", "set", "vB", "up")
	return watched
}

// IP runs `ip -n <namespace> args...` and fails the test if it fails.
func (n *Netns) IP(tb testing.TB, args ...string) {
	tb.Helper()
	if err := n.Run(args...); err != nil {
		tb.Fatal(err)
	}
}

// Run runs `ip -n <namespace> args...`; safe off the test's goroutine.
func (n *Netns) Run(args ...string) error {
	args = append([]string{"-n", n.Name}, args...)
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// GoIn runs fn on a new goroutine whose OS thread is moved into the
// namespace. The thread stays locked, so it is discarded when fn returns
// and no other goroutine ever runs in the namespace.
func (n *Netns) GoIn(fn func() error) <-chan error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Setns(int(n.file.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("setns %s: %w", n.Name, err)
			return
		}
		done <- fn()
	}()
	return done
}
