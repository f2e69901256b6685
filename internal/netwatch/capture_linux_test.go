package netwatch

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"taxi-agent/internal/testsupport"
)

var capture = flag.Bool("capture", false, "rewrite testdata/*.hex from a live namespace")

// captureStep is one configuration step whose netlink messages become one
// testdata file. Addresses stay inside the test's own namespaces.
type captureStep struct {
	file string
	args []string // ip arguments, or
	dump uint16   // a dump requested on the capturing socket
}

var captureSteps = []captureStep{
	{"dump-link.hex", nil, unix.RTM_GETLINK},
	{"dump-addr.hex", nil, unix.RTM_GETADDR},
	{"dump-route.hex", nil, unix.RTM_GETROUTE},
	{"link-down.hex", []string{"link", "set", "vA", "down"}, 0},
	{"link-up.hex", []string{"link", "set", "vA", "up"}, 0},
	{"addr4-add.hex", []string{"addr", "add", "10.200.0.2/24", "dev", "vA"}, 0},
	{"route4-add.hex", []string{"route", "add", "default", "via", "10.200.0.1", "dev", "vA"}, 0},
	{"addr6-add.hex", []string{"-6", "addr", "add", "2001:db8::2/64", "dev", "vA", "nodad"}, 0},
	{"route6-add.hex", []string{"-6", "route", "add", "default", "via", "2001:db8::1", "dev", "vA"}, 0},
	{"route4-del.hex", []string{"route", "del", "default"}, 0},
	{"addr4-del.hex", []string{"addr", "del", "10.200.0.2/24", "dev", "vA"}, 0},
	{"link-del.hex", []string{"link", "del", "vA"}, 0},
}

// dumpBodyLen is the zeroed struct a dump request of each type carries.
var dumpBodyLen = map[uint16]int{unix.RTM_GETLINK: unix.SizeofIfInfomsg, unix.RTM_GETADDR: unix.SizeofIfAddrmsg, unix.RTM_GETROUTE: unix.SizeofRtMsg}

// TestCapture records real rtnetlink messages for the decoding tests. It
// runs only with -capture (go test -run Capture -capture), and waits for the
// kernel's deferred notifications, so it is slow. Each line of a file holds
// what one receive returned, re-encoded by mdlayher/netlink.
func TestCapture(t *testing.T) {
	if !*capture {
		t.Skip("run with -capture to rewrite testdata")
	}
	ns := testsupport.VethPair(t)
	ns.IP(t, "link", "set", "vA", "up")
	time.Sleep(1500 * time.Millisecond) // carrier settles before the dumps
	err := <-ns.GoIn(func() error {
		c, err := netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{Groups: groups})
		if err != nil {
			return err
		}
		defer c.Close()
		for _, s := range captureSteps {
			if s.dump != 0 {
				req := netlink.Message{Header: netlink.Header{Type: netlink.HeaderType(s.dump), Flags: netlink.Request | netlink.Dump},
					Data: make([]byte, dumpBodyLen[s.dump])}
				if _, err := c.Send(req); err != nil {
					return err
				}
			} else if err := ns.Run(s.args...); err != nil {
				return err
			}
			var lines []string
			// Notifications can lag by the kernel's linkwatch second.
			c.SetReadDeadline(time.Now().Add(1200 * time.Millisecond))
			for {
				msgs, err := c.Receive()
				if errors.Is(err, os.ErrDeadlineExceeded) {
					break
				}
				if err != nil {
					return err
				}
				var b []byte
				for _, m := range msgs {
					mb, err := m.MarshalBinary()
					if err != nil {
						return err
					}
					b = append(b, mb...)
				}
				lines = append(lines, hex.EncodeToString(b))
			}
			head := fmt.Sprintf("# captured by TestCapture: %s\n", stepName(s))
			body := head + strings.Join(lines, "\n") + "\n"
			if err := os.WriteFile(filepath.Join("testdata", s.file), []byte(body), 0o644); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func stepName(s captureStep) string {
	if s.dump != 0 {
		return strings.TrimSuffix(s.file, ".hex") + " request"
	}
	return "ip " + strings.Join(s.args, " ")
}
