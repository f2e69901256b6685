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
)

var capture = flag.Bool("capture", false, "rewrite testdata/*.hex from a live namespace")

// captureStep is one configuration step whose netlink datagrams become one
// testdata file. Addresses stay inside the test's own namespaces.
type captureStep struct {
	file    string
	args    []string                // ip arguments, or
	request func(seq uint32) []byte // a request sent on the watcher's socket
}

// badRequest asks for a message type rtnetlink does not know, for an
// NLMSG_ERROR reply.
func badRequest(seq uint32) []byte {
	b := dumpRequest(rtmGetLink, seq)
	order.PutUint16(b[4:], 0x7ff0)
	return b
}

func dump(typ uint16) func(uint32) []byte {
	return func(seq uint32) []byte { return dumpRequest(typ, seq) }
}

var captureSteps = []captureStep{
	{"dump-link.hex", nil, dump(rtmGetLink)},
	{"dump-addr.hex", nil, dump(rtmGetAddr)},
	{"dump-route.hex", nil, dump(rtmGetRoute)},
	{"error.hex", nil, badRequest},
	{"link-down.hex", []string{"link", "set", "vA", "down"}, nil},
	{"link-up.hex", []string{"link", "set", "vA", "up"}, nil},
	{"addr4-add.hex", []string{"addr", "add", "10.200.0.2/24", "dev", "vA"}, nil},
	{"route4-add.hex", []string{"route", "add", "default", "via", "10.200.0.1", "dev", "vA"}, nil},
	{"addr6-add.hex", []string{"-6", "addr", "add", "2001:db8::2/64", "dev", "vA", "nodad"}, nil},
	{"route6-add.hex", []string{"-6", "route", "add", "default", "via", "2001:db8::1", "dev", "vA"}, nil},
	{"route4-del.hex", []string{"route", "del", "default"}, nil},
	{"addr4-del.hex", []string{"addr", "del", "10.200.0.2/24", "dev", "vA"}, nil},
	{"link-del.hex", []string{"link", "del", "vA"}, nil},
}

// TestCapture records real rtnetlink datagrams for the parser tests. It runs
// only with -capture (go test -run Capture -capture), and waits for the
// kernel's deferred notifications, so it is slow.
func TestCapture(t *testing.T) {
	if !*capture {
		t.Skip("run with -capture to rewrite testdata")
	}
	ns := vethPair(t)
	ns.ip(t, "link", "set", "vA", "up")
	time.Sleep(1500 * time.Millisecond) // carrier settles before the dumps
	err := <-ns.goIn(t, func() error {
		c, err := dialNetlink()
		if err != nil {
			return err
		}
		defer c.close()
		nc := c.(*netlinkConn)
		for i, s := range captureSteps {
			if s.request != nil {
				if err := c.send(s.request(uint32(i + 1))); err != nil {
					return err
				}
			} else if err := ns.run(s.args...); err != nil {
				return err
			}
			var lines []string
			// Notifications can lag by the kernel's linkwatch second.
			nc.f.SetReadDeadline(time.Now().Add(1200 * time.Millisecond))
			for {
				b, err := c.receive()
				if errors.Is(err, os.ErrDeadlineExceeded) {
					break
				}
				if err != nil {
					return err
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
	if s.request != nil {
		return strings.TrimSuffix(s.file, ".hex") + " request"
	}
	return "ip " + strings.Join(s.args, " ")
}
